"""Tests for `ClassifierHead`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmin_tf.layers import ClassifierHead
from tests import layer_checks

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
    return layer_checks.random_vectors(batch, INPUT_DIM, seed)


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
    layer_checks.assert_tf_function_matches_eager(_head(), _inputs(), training=False)


def test_config_round_trip():
    config, restored = layer_checks.assert_config_round_trip(
        _head(dropout=0.2), _inputs(), build_args=((None, INPUT_DIM),)
    )

    assert isinstance(restored, ClassifierHead)
    assert (config["num_classes"], config["hidden_sizes"], config["dropout"]) == (
        NUM_CLASSES, HIDDEN_SIZES, 0.2
    )


def test_keras_save_and_load(tmp_path):
    model = layer_checks.vector_functional_model(_head(), INPUT_DIM)

    layer_checks.assert_keras_save_and_load(model, tmp_path, "classifier.keras", _inputs())


def test_one_training_step_changes_every_weight():
    layer_checks.assert_one_training_step_changes_every_weight(
        layer_checks.vector_functional_model(_head(dropout=0.0), INPUT_DIM),
        _inputs(batch=8),
        np.arange(8) % NUM_CLASSES,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )


def test_rejects_fewer_than_two_classes():
    with pytest.raises(ValueError, match=r"`num_classes` must be >= 2. Received: num_classes=1"):
        ClassifierHead(1)


@pytest.mark.parametrize("dropout", [-0.1, 1.0])
def test_rejects_dropout_outside_unit_interval(dropout):
    with pytest.raises(ValueError, match=r"`dropout` must be in \[0, 1\). Received: dropout="):
        ClassifierHead(NUM_CLASSES, dropout=dropout)
