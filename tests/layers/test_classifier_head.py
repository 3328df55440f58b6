"""Tests for `ClassifierHead`."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmin_tf.layers import ClassifierHead

INPUT_DIM = 6
NUM_CLASSES = 3
HIDDEN_SIZES = (8, 5)


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _head(dropout=0.3):
    head = ClassifierHead(NUM_CLASSES, HIDDEN_SIZES, dropout)
    head.build((None, INPUT_DIM))
    return head


def _inputs(batch=4, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, INPUT_DIM)).astype(np.float32)


def test_eager_and_symbolic_output_shapes():
    head = _head()

    logits = head(_inputs())
    symbolic = head(keras.Input((INPUT_DIM,)))

    assert logits.shape == (4, NUM_CLASSES)
    assert logits.dtype == tf.float32
    assert tuple(symbolic.shape) == (None, NUM_CLASSES)
    assert [tuple(layer.kernel.shape) for layer in head.hidden_layers + [head.output_layer]] == [
        (INPUT_DIM, 8), (8, 5), (5, NUM_CLASSES)
    ]


def test_no_hidden_layers_is_a_linear_classifier():
    head = ClassifierHead(NUM_CLASSES, hidden_sizes=())
    inputs = _inputs()

    logits = head(inputs).numpy()

    kernel, bias = head.output_layer.get_weights()
    np.testing.assert_allclose(logits, inputs @ kernel + bias, atol=1e-6)


def test_dropout_only_in_training():
    head = _head(dropout=0.5)
    inputs = _inputs(batch=8)

    inference = head(inputs).numpy()

    np.testing.assert_array_equal(head(inputs, training=False).numpy(), inference)
    assert not np.allclose(head(inputs, training=True).numpy(), head(inputs, training=True).numpy())


def test_tf_function_matches_eager():
    head = _head()
    inputs = _inputs()

    graph = tf.function(lambda x: head(x, training=False))(inputs)

    np.testing.assert_allclose(graph.numpy(), head(inputs).numpy(), atol=1e-6)


def test_config_round_trip():
    head = _head(dropout=0.2)
    inputs = _inputs()

    config = head.get_config()
    restored = ClassifierHead.from_config(config)
    restored.build((None, INPUT_DIM))
    restored.set_weights(head.get_weights())

    assert (config["num_classes"], config["hidden_sizes"], config["dropout"]) == (
        NUM_CLASSES, HIDDEN_SIZES, 0.2
    )
    np.testing.assert_allclose(restored(inputs).numpy(), head(inputs).numpy(), atol=1e-6)


def test_keras_save_and_load(tmp_path):
    inputs = keras.Input((INPUT_DIM,))
    model = keras.Model(inputs, _head()(inputs))
    path = os.path.join(tmp_path, "classifier.keras")

    model.save(path)
    loaded = keras.models.load_model(path)

    np.testing.assert_allclose(loaded(_inputs()).numpy(), model(_inputs()).numpy(), atol=1e-6)


def test_one_training_step_changes_every_weight():
    inputs = keras.Input((INPUT_DIM,))
    model = keras.Model(inputs, _head(dropout=0.0)(inputs))
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    before = [v.numpy().copy() for v in model.trainable_variables]

    loss = model.train_on_batch(_inputs(batch=8), np.arange(8) % NUM_CLASSES)

    assert np.isfinite(loss)
    for old, variable in zip(before, model.trainable_variables):
        assert not np.allclose(old, variable.numpy()), variable.path


def test_rejects_fewer_than_two_classes():
    with pytest.raises(ValueError, match=r"`num_classes` must be >= 2. Received: num_classes=1"):
        ClassifierHead(1)


@pytest.mark.parametrize("dropout", [-0.1, 1.0])
def test_rejects_dropout_outside_unit_interval(dropout):
    with pytest.raises(ValueError, match=r"`dropout` must be in \[0, 1\). Received: dropout="):
        ClassifierHead(NUM_CLASSES, dropout=dropout)
