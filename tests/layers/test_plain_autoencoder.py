"""Tests for `PlainAutoencoder`, the MMIN-AE ablation's imagination network."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmin_tf.layers import CascadeResidualAutoencoder, PlainAutoencoder
from tests import layer_checks

INPUT_DIM = 7
LATENT_DIM = 4
HIDDEN_SIZES = (6,)


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _autoencoder(hidden_sizes=HIDDEN_SIZES):
    autoencoder = PlainAutoencoder(INPUT_DIM, LATENT_DIM, hidden_sizes)
    autoencoder.build()
    return autoencoder


def _inputs(batch=3, seed=0):
    return layer_checks.random_vectors(batch, INPUT_DIM, seed)


def test_eager_and_symbolic_output_shapes():
    autoencoder = _autoencoder()

    outputs = autoencoder(_inputs())
    symbolic = autoencoder(keras.Input((INPUT_DIM,)))

    assert set(outputs) == {"reconstruction", "latents"}
    assert outputs["reconstruction"].shape == (3, INPUT_DIM)
    assert outputs["latents"].shape == (3, LATENT_DIM)
    assert outputs["reconstruction"].dtype == tf.float32 and outputs["latents"].dtype == tf.float32
    assert tuple(symbolic["reconstruction"].shape) == (None, INPUT_DIM)
    assert tuple(symbolic["latents"].shape) == (None, LATENT_DIM)


def test_architecture_is_symmetric_around_the_bottleneck():
    autoencoder = _autoencoder(hidden_sizes=(6, 5))

    shapes = [tuple(layer.kernel.shape) for layer in autoencoder.encoder_layers + autoencoder.decoder_layers]

    assert shapes == [(7, 6), (6, 5), (5, 4), (4, 5), (5, 6), (6, 7)]


def test_reconstruction_decodes_latents():
    autoencoder = _autoencoder()
    h = _inputs()

    outputs = autoencoder(h)
    hidden = np.maximum(
        outputs["latents"].numpy() @ autoencoder.decoder_layers[0].kernel.numpy()
        + autoencoder.decoder_layers[0].bias.numpy(),
        0.0,
    )
    kernel, bias = autoencoder.decoder_layers[1].get_weights()

    np.testing.assert_allclose(outputs["reconstruction"].numpy(), hidden @ kernel + bias, atol=1e-5)


@pytest.mark.parametrize("hidden_sizes", [(6,), (6, 5)])
def test_parameter_count_matches_built_layer(hidden_sizes):
    autoencoder = _autoencoder(hidden_sizes)

    assert PlainAutoencoder.parameter_count(INPUT_DIM, LATENT_DIM, hidden_sizes) == autoencoder.count_params()


def test_matched_hidden_size_matches_default_cascade_within_one_percent():
    cascade = CascadeResidualAutoencoder(384, num_blocks=5, hidden_sizes=(256, 128, 64), use_transition=True)
    cascade.build()
    target = cascade.count_params()

    width = PlainAutoencoder.matched_hidden_size(384, cascade.latent_dim, target)
    plain = PlainAutoencoder(384, cascade.latent_dim, (width,))
    plain.build()

    assert abs(plain.count_params() - target) <= 0.01 * target
    for neighbour in (width - 1, width + 1):  # the closest width, not just a close one
        assert abs(PlainAutoencoder.parameter_count(384, cascade.latent_dim, (neighbour,)) - target) >= abs(
            plain.count_params() - target
        )


def test_tf_function_matches_eager():
    layer_checks.assert_tf_function_matches_eager(_autoencoder(), _inputs())


def test_config_round_trip():
    config, _ = layer_checks.assert_config_round_trip(_autoencoder(), _inputs())

    assert (config["input_dim"], config["latent_dim"], config["hidden_sizes"]) == (
        INPUT_DIM, LATENT_DIM, HIDDEN_SIZES
    )


def test_keras_save_and_load(tmp_path):
    model = layer_checks.vector_functional_model(_autoencoder(), INPUT_DIM)

    layer_checks.assert_keras_save_and_load(
        model, tmp_path, "plain.keras", _inputs(), keys=("reconstruction", "latents")
    )


def test_one_training_step_changes_every_weight():
    model = layer_checks.vector_functional_model(_autoencoder(), INPUT_DIM)
    h = _inputs(batch=8)

    layer_checks.assert_one_training_step_changes_every_weight(
        model,
        h,
        {"reconstruction": h, "latents": np.zeros((8, LATENT_DIM), np.float32)},
        loss={"reconstruction": "mse", "latents": None},
    )
