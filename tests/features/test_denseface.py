"""Tests for `Denseface`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmin_tf.features.denseface import PIXEL_MEAN, PIXEL_STD, Denseface
from tests import layer_checks

TINY = dict(layers_per_block=2)  # 24 -> 48 -> 24 -> 48 -> 24 -> 48 channels
TINY_FEATURE_DIM = 48


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _model(**overrides):
    model = Denseface(**{**TINY, **overrides})
    model.build((None, 64, 64, 1))
    return model


def _images(batch=3, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, size=(batch, 64, 64, 1)).astype(np.float32)


def _expected_parameters(layers_per_block, growth_rate, num_blocks, compression, num_classes):
    """Weights of the architecture as described: convolutions without bias, 4 per BN (gamma, beta,
    moving mean and variance), a Dense with bias."""
    channels = 2 * growth_rate
    total = 3 * 3 * 1 * channels  # stem
    for block in range(num_blocks):
        for _ in range(layers_per_block):
            total += 4 * channels + channels * 4 * growth_rate  # BN, Conv1x1
            total += 4 * 4 * growth_rate + 3 * 3 * 4 * growth_rate * growth_rate  # BN, Conv3x3
            channels += growth_rate
        if block < num_blocks - 1:
            filters = int(channels * compression)
            total += 4 * channels + channels * filters
            channels = filters
    return total + 4 * channels + channels * num_classes + num_classes, channels


def test_eager_and_symbolic_output_shapes():
    model = _model()

    outputs = model(_images())
    symbolic = model(keras.Input((64, 64, 1)))

    assert {key: tuple(value.shape) for key, value in outputs.items()} == {
        "features": (3, TINY_FEATURE_DIM), "logits": (3, 8)
    }
    assert outputs["features"].dtype == tf.float32 and outputs["logits"].dtype == tf.float32
    assert {key: tuple(value.shape) for key, value in symbolic.items()} == {
        "features": (None, TINY_FEATURE_DIM), "logits": (None, 8)
    }
    assert model.feature_dim == TINY_FEATURE_DIM
    assert np.all(outputs["features"].numpy() >= 0.0)  # pooled after a ReLU


def test_pixels_are_normalised_inside_the_model():
    model = _model()
    plain = _model(pixel_mean=0.0, pixel_std=1.0)
    plain.set_weights(model.get_weights())
    images = _images()

    layer_checks.assert_outputs_close(model(images), plain((images - PIXEL_MEAN) / PIXEL_STD), atol=1e-5)


def test_tf_function_matches_eager():
    layer_checks.assert_tf_function_matches_eager(_model(), _images(), training=False)


def test_training_uses_batch_statistics():
    model = _model()
    images = _images(batch=4)

    inference = model(images, training=False)["features"].numpy()

    assert not np.allclose(model(images, training=True)["features"].numpy(), inference)


def test_config_round_trip():
    config, restored = layer_checks.assert_config_round_trip(
        _model(growth_rate=4, compression=0.75, num_classes=5, pixel_mean=100.0, pixel_std=50.0),
        _images(), build_args=((None, 64, 64, 1),),
    )

    assert isinstance(restored, Denseface)
    assert {key: config[key] for key in (
        "layers_per_block", "growth_rate", "num_blocks", "compression", "num_classes", "pixel_mean",
        "pixel_std", "batch_norm_momentum",
    )} == dict(layers_per_block=2, growth_rate=4, num_blocks=3, compression=0.75, num_classes=5,
               pixel_mean=100.0, pixel_std=50.0, batch_norm_momentum=0.999)
    assert restored.feature_dim == _expected_parameters(2, 4, 3, 0.75, 5)[1]


def test_keras_save_and_load(tmp_path):
    model = _model()
    model(_images(), training=True)  # moves the moving statistics away from their initial values

    loaded = layer_checks.assert_keras_save_and_load(model, tmp_path, "face.keras", _images(seed=1))

    assert isinstance(loaded, Denseface)


def test_one_training_step_changes_every_weight():
    model = _model()
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss={"logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)},
    )
    before = [variable.numpy().copy() for variable in model.trainable_variables]

    loss = model.train_on_batch(_images(batch=4), {"logits": np.arange(4)})

    assert np.isfinite(loss)
    for old, variable in zip(before, model.trainable_variables):
        assert not np.allclose(old, variable.numpy()), variable.path


def test_tiny_configuration_size():
    model = _model()

    assert model.count_params() == _expected_parameters(2, 12, 3, 0.5, 8)[0]
    assert 40_000 < model.count_params() < 50_000


def test_paper_configuration():
    model = Denseface()
    model.build((None, 64, 64, 1))

    assert model.depth == 100
    assert model.feature_dim == 342
    assert model.transition_filters == [108, 150]
    assert model.count_params() == _expected_parameters(16, 12, 3, 0.5, 8)[0]
    assert abs(model.count_params() - 792_000) / 792_000 < 0.02
    assert (model.pixel_mean, model.pixel_std) == (131.0754, 47.858177)


@pytest.mark.parametrize("name", ["layers_per_block", "growth_rate", "num_blocks"])
def test_rejects_sizes_below_one(name):
    with pytest.raises(ValueError, match=rf"`{name}` must be >= 1. Received: {name}=0"):
        Denseface(**{name: 0})


@pytest.mark.parametrize("compression", [0.0, 1.5])
def test_rejects_compression_outside_0_1(compression):
    with pytest.raises(ValueError, match=r"`compression` must be in \(0, 1\]. Received: compression="):
        Denseface(compression=compression)


def test_rejects_compression_that_leaves_no_channels():
    message = r"`compression` leaves no channels after dense block 0 \(36 channels x 0.01\)"
    with pytest.raises(ValueError, match=message):
        Denseface(layers_per_block=1, compression=0.01)


def test_rejects_fewer_than_two_classes():
    with pytest.raises(ValueError, match=r"`num_classes` must be >= 2. Received: num_classes=1"):
        Denseface(num_classes=1)


@pytest.mark.parametrize("pixel_std", [0.0, -1.0])
def test_rejects_non_positive_pixel_std(pixel_std):
    with pytest.raises(ValueError, match=r"`pixel_std` must be > 0. Received: pixel_std="):
        Denseface(pixel_std=pixel_std)


@pytest.mark.parametrize("momentum", [-0.1, 1.0])
def test_rejects_batch_norm_momentum_outside_0_1(momentum):
    with pytest.raises(ValueError, match=r"`batch_norm_momentum` must be in \[0, 1\). Received: batch_norm_momentum="):
        Denseface(batch_norm_momentum=momentum)
