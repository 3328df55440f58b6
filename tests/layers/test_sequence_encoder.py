"""Tests for `SequenceEncoder` (LSTM + masked max-pool) and `masked_max_over_time`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmin_tf.layers import SequenceEncoder
from mmin_tf.layers.masking import masked_max_over_time
from tests import layer_checks

FEATURE_DIM = 5
HIDDEN_SIZE = 6


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _features(rng, lengths, time, padding=0.0):
    return layer_checks.random_padded_features(rng, lengths, time, FEATURE_DIM, padding)


def _encoder(**kwargs):
    encoder = SequenceEncoder(HIDDEN_SIZE, **kwargs)
    encoder.build((None, None, FEATURE_DIM), (None,))
    return encoder


def _functional(encoder):
    return layer_checks.sequence_functional_model(encoder, FEATURE_DIM)


# masked_max_over_time ------------------------------------------------------------------------


def test_masked_max_over_time_matches_numpy_reference():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(4, 6, 3)).astype(np.float32) - 5.0  # all negative: 0 would win
    valid_steps = np.array([1, 3, 6, 2], np.int32)
    values[0, 1:] = 100.0  # large padding must never be selected
    expected = np.stack([values[b, :n].max(axis=0) for b, n in enumerate(valid_steps)])

    eager = masked_max_over_time(tf.constant(values), tf.constant(valid_steps))
    graph = tf.function(masked_max_over_time)(tf.constant(values), tf.constant(valid_steps, tf.int64))

    np.testing.assert_array_equal(eager.numpy(), expected)
    np.testing.assert_array_equal(graph.numpy(), expected)


# SequenceEncoder -------------------------------------------------------------------------------


def test_eager_and_symbolic_output_shapes():
    features, lengths = _features(np.random.default_rng(0), [4, 1, 3], time=4)
    encoder = _encoder()

    outputs = encoder(features, lengths)
    symbolic = encoder(keras.Input((None, FEATURE_DIM)), keras.Input((), dtype="int32"))

    assert outputs.shape == (3, HIDDEN_SIZE)
    assert outputs.dtype == tf.float32
    assert tuple(symbolic.shape) == (None, HIDDEN_SIZE)
    assert encoder.output_size == HIDDEN_SIZE
    assert encoder.minimum_length == 1


@pytest.mark.parametrize("padding", [0.0, 7.5], ids=["zeros", "garbage"])
def test_embedding_does_not_depend_on_padding(padding):
    rng = np.random.default_rng(2)
    features, lengths = _features(rng, [3, 2], time=3)
    longer = np.concatenate(
        [features, np.full((2, 5, FEATURE_DIM), padding, np.float32)], axis=1
    )  # (2, 8, D)
    longer[1, 2:] = padding
    encoder = _encoder()

    np.testing.assert_allclose(
        encoder(longer, lengths).numpy(), encoder(features, lengths).numpy(), atol=1e-6
    )


def test_embedding_is_max_of_lstm_outputs_over_valid_steps():
    features, lengths = _features(np.random.default_rng(3), [5, 2], time=5)
    encoder = _encoder()

    sequence = encoder.lstm(features).numpy()  # (B, T, H)
    expected = np.stack([sequence[b, :n].max(axis=0) for b, n in enumerate(lengths)])

    np.testing.assert_allclose(encoder(features, lengths).numpy(), expected, atol=1e-6)


def test_call_is_pool_and_project_is_the_identity():
    features, lengths = _features(np.random.default_rng(9), [4, 2], time=4)
    encoder = _encoder()

    pooled = encoder.pool(features, lengths)

    np.testing.assert_array_equal(encoder.project(pooled, training=True).numpy(), pooled.numpy())
    np.testing.assert_array_equal(encoder(features, lengths).numpy(), pooled.numpy())


def test_tf_function_matches_eager():
    features, lengths = _features(np.random.default_rng(4), [4, 1, 2], time=4)

    layer_checks.assert_tf_function_matches_eager(_encoder(), features, lengths)


def test_config_round_trip():
    features, lengths = _features(np.random.default_rng(5), [3, 1], time=3)

    config, restored = layer_checks.assert_config_round_trip(
        _encoder(use_cudnn=False), features, lengths, build_args=((None, None, FEATURE_DIM), (None,))
    )

    assert isinstance(restored, SequenceEncoder)
    assert config["hidden_size"] == HIDDEN_SIZE and config["use_cudnn"] is False
    assert restored.get_config() == config


def test_keras_save_and_load(tmp_path):
    features, lengths = _features(np.random.default_rng(6), [3, 1, 2], time=3)

    model = _functional(_encoder())

    layer_checks.assert_keras_save_and_load(model, tmp_path, "encoder.keras", [features, lengths])


def test_one_training_step_changes_every_weight():
    features, lengths = _features(np.random.default_rng(7), [3, 1, 2], time=3)

    model = _functional(_encoder())

    layer_checks.assert_one_training_step_changes_every_weight(
        model, [features, lengths], np.ones((3, HIDDEN_SIZE), np.float32), loss="mse"
    )


def test_rejects_non_positive_hidden_size():
    with pytest.raises(ValueError, match=r"`hidden_size` must be >= 1. Received: hidden_size=0"):
        SequenceEncoder(0)
