"""Tests for `SequenceEncoder` (LSTM + masked max-pool) and `masked_max_over_time`."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmin_tf.layers import SequenceEncoder
from mmin_tf.layers.masking import masked_max_over_time

FEATURE_DIM = 5
HIDDEN_SIZE = 6


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _features(rng, lengths, time, padding=0.0):
    """`(batch, time, FEATURE_DIM)` random frames; `padding` beyond each row's length."""
    features = rng.normal(size=(len(lengths), time, FEATURE_DIM)).astype(np.float32)
    for row, length in enumerate(lengths):
        features[row, length:] = padding
    return features, np.asarray(lengths, np.int32)


def _encoder(**kwargs):
    encoder = SequenceEncoder(HIDDEN_SIZE, **kwargs)
    encoder.build((None, None, FEATURE_DIM), (None,))
    return encoder


def _functional(encoder):
    features = keras.Input((None, FEATURE_DIM), name="features")
    lengths = keras.Input((), dtype="int32", name="lengths")
    return keras.Model([features, lengths], encoder(features, lengths))


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


def test_tf_function_matches_eager():
    features, lengths = _features(np.random.default_rng(4), [4, 1, 2], time=4)
    encoder = _encoder()

    graph = tf.function(lambda f, l: encoder(f, l))(features, lengths)

    np.testing.assert_allclose(graph.numpy(), encoder(features, lengths).numpy(), atol=1e-6)


def test_config_round_trip():
    features, lengths = _features(np.random.default_rng(5), [3, 1], time=3)
    encoder = _encoder(use_cudnn=False)

    config = encoder.get_config()
    restored = SequenceEncoder.from_config(config)
    restored.build((None, None, FEATURE_DIM), (None,))
    restored.set_weights(encoder.get_weights())

    assert config["hidden_size"] == HIDDEN_SIZE and config["use_cudnn"] is False
    assert restored.get_config() == config
    np.testing.assert_allclose(
        restored(features, lengths).numpy(), encoder(features, lengths).numpy(), atol=1e-6
    )


def test_keras_save_and_load(tmp_path):
    features, lengths = _features(np.random.default_rng(6), [3, 1, 2], time=3)
    model = _functional(_encoder())
    path = os.path.join(tmp_path, "encoder.keras")

    model.save(path)
    loaded = keras.models.load_model(path)

    np.testing.assert_allclose(
        loaded([features, lengths]).numpy(), model([features, lengths]).numpy(), atol=1e-6
    )


def test_one_training_step_changes_every_weight():
    features, lengths = _features(np.random.default_rng(7), [3, 1, 2], time=3)
    model = _functional(_encoder())
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = [v.numpy().copy() for v in model.trainable_variables]

    loss = model.train_on_batch([features, lengths], np.ones((3, HIDDEN_SIZE), np.float32))

    assert np.isfinite(loss)
    for old, variable in zip(before, model.trainable_variables):
        assert not np.allclose(old, variable.numpy()), variable.path


def test_rejects_non_positive_hidden_size():
    with pytest.raises(ValueError, match=r"`hidden_size` must be >= 1. Received: hidden_size=0"):
        SequenceEncoder(0)
