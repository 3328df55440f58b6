"""Tests for the `TextCNN` text encoder."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmin_tf.layers import TextCNN
from tests import layer_checks

FEATURE_DIM = 4
CHANNELS = 5
KERNEL_SIZES = (2, 3)
EMBEDDING_SIZE = 6


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _features(rng, lengths, time, padding=0.0):
    return layer_checks.random_padded_features(rng, lengths, time, FEATURE_DIM, padding)


def _encoder(dropout=0.5):
    encoder = TextCNN(CHANNELS, KERNEL_SIZES, EMBEDDING_SIZE, dropout)
    encoder.build((None, None, FEATURE_DIM), (None,))
    return encoder


def _functional(encoder):
    return layer_checks.sequence_functional_model(encoder, FEATURE_DIM)


def test_eager_and_symbolic_output_shapes():
    features, lengths = _features(np.random.default_rng(0), [5, 1, 3], time=5)
    encoder = _encoder()

    outputs = encoder(features, lengths)
    symbolic = encoder(keras.Input((None, FEATURE_DIM)), keras.Input((), dtype="int32"))

    assert outputs.shape == (3, EMBEDDING_SIZE)
    assert outputs.dtype == tf.float32
    assert tuple(symbolic.shape) == (None, EMBEDDING_SIZE)
    assert encoder.output_size == EMBEDDING_SIZE
    assert encoder.minimum_length == max(KERNEL_SIZES)
    assert np.all(outputs.numpy() >= 0.0)  # ReLU projection, as the original


def test_embedding_is_projection_of_max_over_valid_windows():
    features, lengths = _features(np.random.default_rng(1), [6, 3], time=6)
    encoder = _encoder()

    pooled = []
    for size, convolution in zip(KERNEL_SIZES, encoder.convolutions):
        maps = convolution(features).numpy()  # (B, T - size + 1, C)
        pooled.append(np.stack([maps[b, : n - size + 1].max(axis=0) for b, n in enumerate(lengths)]))
    expected = encoder.projection(np.concatenate(pooled, axis=-1)).numpy()

    np.testing.assert_allclose(encoder(features, lengths).numpy(), expected, atol=1e-6)


def test_call_is_project_of_pool_with_the_dropout_in_project():
    features, lengths = _features(np.random.default_rng(9), [6, 3, 4], time=6)
    encoder = _encoder()

    pooled = encoder.pool(features, lengths)

    assert pooled.shape == (3, CHANNELS * len(KERNEL_SIZES))
    np.testing.assert_allclose(encoder(features, lengths).numpy(), encoder.project(pooled).numpy(), atol=1e-6)
    # Dropout lives in `project`: the same pooled row projects differently row by row in training.
    repeated = tf.repeat(pooled[:1], 8, axis=0)
    assert len({row.tobytes() for row in encoder.project(repeated, training=True).numpy()}) > 1


@pytest.mark.parametrize("lengths", [[4, 2], [1, 2]], ids=["longer_than_kernels", "shorter"])
def test_embedding_does_not_depend_on_padding(lengths):
    rng = np.random.default_rng(2)
    short, lengths = _features(rng, lengths, time=max(lengths))
    long = np.concatenate([short, np.zeros((2, 6, FEATURE_DIM), np.float32)], axis=1)
    encoder = _encoder()

    np.testing.assert_allclose(
        encoder(long, lengths).numpy(), encoder(short, lengths).numpy(), atol=1e-6
    )


def test_sequence_shorter_than_largest_kernel_equals_explicit_zero_padding():
    features, lengths = _features(np.random.default_rng(3), [2, 1], time=2)
    padded = np.pad(features, [[0, 0], [0, max(KERNEL_SIZES) - 2], [0, 0]])  # (B, 3, D)
    single = features[1:, :1]  # (1, 1, D): shorter than every kernel
    encoder = _encoder()

    outputs = encoder(features, lengths).numpy()

    np.testing.assert_allclose(outputs, encoder(padded, lengths).numpy(), atol=1e-6)
    np.testing.assert_allclose(
        encoder(single, lengths[1:]).numpy(), outputs[1:], atol=1e-6
    )


def test_dropout_only_in_training():
    features, lengths = _features(np.random.default_rng(4), [5, 4, 3, 5], time=5)
    encoder = _encoder(dropout=0.5)

    inference = encoder(features, lengths).numpy()
    first = encoder(features, lengths, training=True).numpy()
    second = encoder(features, lengths, training=True).numpy()

    np.testing.assert_array_equal(encoder(features, lengths, training=False).numpy(), inference)
    assert not np.allclose(first, second)  # a new dropout mask per call
    assert not np.allclose(first, inference)


def test_tf_function_matches_eager():
    features, lengths = _features(np.random.default_rng(5), [5, 1, 2], time=5)

    layer_checks.assert_tf_function_matches_eager(_encoder(), features, lengths, training=False)


def test_config_round_trip():
    features, lengths = _features(np.random.default_rng(6), [4, 2], time=4)

    config, restored = layer_checks.assert_config_round_trip(
        _encoder(dropout=0.25), features, lengths, build_args=((None, None, FEATURE_DIM), (None,))
    )

    assert isinstance(restored, TextCNN)
    assert (config["channels"], config["kernel_sizes"], config["embedding_size"], config["dropout"]) == (
        CHANNELS, KERNEL_SIZES, EMBEDDING_SIZE, 0.25
    )


def test_keras_save_and_load(tmp_path):
    features, lengths = _features(np.random.default_rng(7), [4, 1, 2], time=4)

    model = _functional(_encoder())

    layer_checks.assert_keras_save_and_load(model, tmp_path, "text_cnn.keras", [features, lengths])


def test_one_training_step_changes_every_weight():
    features, lengths = _features(np.random.default_rng(8), [4, 3, 2, 4], time=4)

    model = _functional(_encoder(dropout=0.1))

    layer_checks.assert_one_training_step_changes_every_weight(
        model, [features, lengths], np.ones((4, EMBEDDING_SIZE), np.float32), loss="mse"
    )


@pytest.mark.parametrize("kernel_sizes", [(), (0, 3)], ids=["empty", "zero"])
def test_rejects_bad_kernel_sizes(kernel_sizes):
    with pytest.raises(ValueError, match=r"`kernel_sizes` must be positive ints. Received: \("):
        TextCNN(kernel_sizes=kernel_sizes)


@pytest.mark.parametrize("dropout", [-0.1, 1.0])
def test_rejects_dropout_outside_unit_interval(dropout):
    with pytest.raises(ValueError, match=r"`dropout` must be in \[0, 1\). Received: dropout="):
        TextCNN(dropout=dropout)
