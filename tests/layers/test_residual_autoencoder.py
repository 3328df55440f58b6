"""Tests for `ResidualAutoencoder`, one block of the CRA."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmin_tf.layers import ResidualAutoencoder
from tests import layer_checks

INPUT_DIM = 7
HIDDEN_SIZES = (6, 5, 4)


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _block(hidden_sizes=HIDDEN_SIZES):
    block = ResidualAutoencoder(INPUT_DIM, hidden_sizes)
    block.build()
    return block


def _inputs(batch=3, seed=0):
    return layer_checks.random_vectors(batch, INPUT_DIM, seed)


def _dense(layer, x):
    kernel, bias = layer.get_weights()
    return x @ kernel + bias


def test_eager_and_symbolic_output_shapes():
    block = _block()

    residual, latent = block(_inputs())
    symbolic_residual, symbolic_latent = block(keras.Input((INPUT_DIM,)))

    assert residual.shape == (3, INPUT_DIM) and latent.shape == (3, 4)
    assert residual.dtype == tf.float32 and latent.dtype == tf.float32
    assert tuple(symbolic_residual.shape) == (None, INPUT_DIM)
    assert tuple(symbolic_latent.shape) == (None, 4)
    assert block.latent_dim == 4


def test_mirrored_architecture():
    block = _block()

    encoder = [tuple(layer.kernel.shape) for layer in block.encoder_layers]
    decoder = [tuple(layer.kernel.shape) for layer in block.decoder_layers]

    assert encoder == [(7, 6), (6, 5), (5, 4)]  # 7-6-5-4 ...
    assert decoder == [(4, 5), (5, 6), (6, 7)]  # ... -5-6-7, as Table 3's 384-...-64-...-384


def test_leaky_relu_encoder_linear_bottleneck_relu_decoder():
    block = _block(hidden_sizes=(6, 4))
    x = _inputs()

    hidden = _dense(block.encoder_layers[0], x)
    hidden = np.where(hidden > 0, hidden, 0.01 * hidden)  # LeakyReLU(0.01)
    latent = _dense(block.encoder_layers[1], hidden)  # linear bottleneck
    residual = _dense(block.decoder_layers[1], np.maximum(_dense(block.decoder_layers[0], latent), 0))

    outputs = block(x)
    np.testing.assert_allclose(outputs[1].numpy(), latent, atol=1e-5)
    np.testing.assert_allclose(outputs[0].numpy(), residual, atol=1e-5)


def test_single_hidden_size_decodes_latent_directly():
    block = _block(hidden_sizes=(3,))

    residual, latent = block(_inputs())

    assert [tuple(layer.kernel.shape) for layer in block.decoder_layers] == [(3, INPUT_DIM)]
    np.testing.assert_allclose(
        residual.numpy(), _dense(block.decoder_layers[0], latent.numpy()), atol=1e-6
    )


def test_tf_function_matches_eager():
    layer_checks.assert_tf_function_matches_eager(_block(), _inputs())


def test_config_round_trip():
    config, _ = layer_checks.assert_config_round_trip(_block(), _inputs())

    assert (config["input_dim"], config["hidden_sizes"]) == (INPUT_DIM, HIDDEN_SIZES)


def _functional(block):
    """The block with its `(residual, latent)` outputs named, so each can get its own loss."""
    return layer_checks.vector_functional_model(block, INPUT_DIM, output_names=("residual", "latent"))


def test_keras_save_and_load(tmp_path):
    layer_checks.assert_keras_save_and_load(
        _functional(_block()), tmp_path, "block.keras", _inputs(), keys=("residual", "latent")
    )


def test_one_training_step_changes_every_weight():
    model = _functional(_block(hidden_sizes=(6, 4)))
    x = _inputs(batch=8)

    layer_checks.assert_one_training_step_changes_every_weight(
        model,
        x,
        {"residual": -x, "latent": np.zeros((8, 4), np.float32)},
        loss={"residual": "mse", "latent": None},
    )


def test_rejects_empty_hidden_sizes():
    with pytest.raises(ValueError, match=r"`hidden_sizes` must be non-empty. Received: \(\)"):
        ResidualAutoencoder(INPUT_DIM, ())
