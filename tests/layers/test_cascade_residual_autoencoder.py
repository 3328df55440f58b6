"""Tests for `CascadeResidualAutoencoder` (paper Eq. 2-3, §3.1.4)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmin_tf.layers import CascadeResidualAutoencoder
from tests import layer_checks

INPUT_DIM = 7
NUM_BLOCKS = 3
HIDDEN_SIZES = (6, 4)
LATENT = HIDDEN_SIZES[-1]


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _cascade(use_transition=True, num_blocks=NUM_BLOCKS):
    cascade = CascadeResidualAutoencoder(INPUT_DIM, num_blocks, HIDDEN_SIZES, use_transition)
    cascade.build()
    return cascade


def _inputs(batch=3, seed=0):
    return layer_checks.random_vectors(batch, INPUT_DIM, seed)


def _by_hand(cascade, h):
    """Eq. 2-3 from the blocks: block k sees h + sum_{j<k} delta_j; returns h + sum deltas."""
    deltas, latents = [], []
    for block in cascade.blocks:
        delta, latent = block(h + sum(deltas))
        deltas.append(delta.numpy())
        latents.append(latent.numpy())
    return h + sum(deltas), np.concatenate(latents, axis=-1)


@pytest.mark.parametrize("use_transition", [True, False])
def test_eager_and_symbolic_output_shapes(use_transition):
    cascade = _cascade(use_transition)

    outputs = cascade(_inputs())
    symbolic = cascade(keras.Input((INPUT_DIM,)))

    assert set(outputs) == {"reconstruction", "latents"}
    assert outputs["reconstruction"].shape == (3, INPUT_DIM)
    assert outputs["latents"].shape == (3, NUM_BLOCKS * LATENT)
    assert outputs["reconstruction"].dtype == tf.float32 and outputs["latents"].dtype == tf.float32
    assert tuple(symbolic["reconstruction"].shape) == (None, INPUT_DIM)
    assert tuple(symbolic["latents"].shape) == (None, NUM_BLOCKS * LATENT)
    assert cascade.latent_dim == NUM_BLOCKS * LATENT


def test_without_transition_reconstruction_is_h_plus_block_residuals():
    cascade = _cascade(use_transition=False)
    h = _inputs()

    imagined, latents = _by_hand(cascade, h)
    outputs = cascade(h)

    assert not cascade.transition_layers
    np.testing.assert_allclose(outputs["reconstruction"].numpy(), imagined, atol=1e-5)
    np.testing.assert_allclose(outputs["latents"].numpy(), latents, atol=1e-6)


def test_with_transition_reconstruction_is_transition_of_imagined():
    cascade = _cascade(use_transition=True)
    h = _inputs()

    imagined, latents = _by_hand(cascade, h)
    (kernel_0, bias_0), (kernel_1, bias_1) = [layer.get_weights() for layer in cascade.transition_layers]
    expected = np.maximum(imagined @ kernel_0 + bias_0, 0.0) @ kernel_1 + bias_1  # Dense-ReLU-Dense
    outputs = cascade(h)

    assert kernel_0.shape == (INPUT_DIM, INPUT_DIM) and kernel_1.shape == (INPUT_DIM, INPUT_DIM)
    np.testing.assert_allclose(outputs["reconstruction"].numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(outputs["latents"].numpy(), latents, atol=1e-6)


def test_one_block_is_h_plus_its_residual():
    cascade = _cascade(use_transition=False, num_blocks=1)
    h = _inputs()

    delta, latent = cascade.blocks[0](h)
    outputs = cascade(h)

    np.testing.assert_allclose(outputs["reconstruction"].numpy(), h + delta.numpy(), atol=1e-6)
    np.testing.assert_allclose(outputs["latents"].numpy(), latent.numpy(), atol=1e-6)


def test_blocks_have_independent_weights():
    cascade = _cascade()

    block_variables = [{id(v) for v in block.trainable_variables} for block in cascade.blocks]

    assert len(block_variables) == NUM_BLOCKS
    for i in range(NUM_BLOCKS):
        for j in range(i + 1, NUM_BLOCKS):
            assert not block_variables[i] & block_variables[j]
    assert not np.allclose(
        cascade.blocks[0].encoder_layers[0].kernel.numpy(),
        cascade.blocks[1].encoder_layers[0].kernel.numpy(),
    )


def test_tf_function_matches_eager():
    layer_checks.assert_tf_function_matches_eager(_cascade(), _inputs())


@pytest.mark.parametrize("use_transition", [True, False])
def test_config_round_trip(use_transition):
    config, _ = layer_checks.assert_config_round_trip(_cascade(use_transition), _inputs())

    assert (config["input_dim"], config["num_blocks"], config["hidden_sizes"], config["use_transition"]) == (
        INPUT_DIM, NUM_BLOCKS, HIDDEN_SIZES, use_transition
    )


def test_keras_save_and_load(tmp_path):
    model = layer_checks.vector_functional_model(_cascade(), INPUT_DIM)

    layer_checks.assert_keras_save_and_load(
        model, tmp_path, "cascade.keras", _inputs(), keys=("reconstruction", "latents")
    )


def test_one_training_step_changes_every_weight():
    model = layer_checks.vector_functional_model(_cascade(), INPUT_DIM)
    h = _inputs(batch=8)

    layer_checks.assert_one_training_step_changes_every_weight(
        model,
        h,
        {"reconstruction": -h, "latents": np.zeros((8, NUM_BLOCKS * LATENT), np.float32)},
        loss={"reconstruction": "mse", "latents": None},
    )


def test_rejects_no_blocks():
    with pytest.raises(ValueError, match=r"`num_blocks` must be >= 1. Received: num_blocks=0"):
        CascadeResidualAutoencoder(INPUT_DIM, num_blocks=0)
