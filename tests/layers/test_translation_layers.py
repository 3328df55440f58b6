"""Tests for MCTN's layers: `TranslationEncoder`, `AttentionDecoder`, `RecurrentAttentionPooling`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmin_tf.layers import AttentionDecoder, RecurrentAttentionPooling, TranslationEncoder
from tests import layer_checks

STEPS, WIDTH = 5, 6

# name -> (layer factory, output shape for a (batch, STEPS, WIDTH) input)
LAYERS = {
    "encoder": (lambda: TranslationEncoder(4, use_cudnn=False), lambda b: (b, STEPS, 4)),
    "decoder": (lambda: AttentionDecoder(3, steps=7, hidden_size=4), lambda b: (b, 7, 3)),
    "pooling": (lambda: RecurrentAttentionPooling(4, use_cudnn=False), lambda b: (b, 4)),
}


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _layer(name):
    layer = LAYERS[name][0]()
    layer.build((None, STEPS, WIDTH))
    return layer


def _sequence(batch=3, seed=0):
    return tf.constant(np.random.default_rng(seed).normal(size=(batch, STEPS, WIDTH)), tf.float32)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_eager_and_symbolic_shapes_and_graph(name):
    layer = _layer(name)
    outputs = layer(_sequence())
    assert tuple(outputs.shape) == LAYERS[name][1](3) and outputs.dtype == tf.float32
    assert tuple(layer(keras.Input((STEPS, WIDTH))).shape) == LAYERS[name][1](None)
    layer_checks.assert_tf_function_matches_eager(layer, _sequence(seed=1))


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_config_round_trip_and_keras_file(name, tmp_path):
    layer = _layer(name)
    layer_checks.assert_config_round_trip(layer, _sequence(), build_args=((None, STEPS, WIDTH),))
    inputs = keras.Input((STEPS, WIDTH))
    model = keras.Model(inputs, layer(inputs))
    layer_checks.assert_keras_save_and_load(model, str(tmp_path), f"{name}.keras", _sequence(seed=2))


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_one_fit_step_trains_every_weight(name):
    layer = LAYERS[name][0]()
    inputs = keras.Input((STEPS, WIDTH))
    model = keras.Model(inputs, layer(inputs))
    target = np.random.default_rng(3).normal(size=LAYERS[name][1](4)).astype(np.float32)
    layer_checks.assert_one_training_step_changes_every_weight(model, _sequence(4).numpy(), target, "mse")


def test_the_decoder_attends_over_every_encoder_step():
    decoder = _layer("decoder")
    sequence = _sequence().numpy()
    changed = sequence.copy()
    changed[:, -1] += 1.0  # only the last encoder step
    assert not np.allclose(decoder(sequence).numpy(), decoder(changed).numpy())


@pytest.mark.parametrize("make, message", [
    (lambda: TranslationEncoder(0), "`hidden_size` must be a positive int"),
    (lambda: RecurrentAttentionPooling(1.5), "`hidden_size` must be a positive int"),
    (lambda: AttentionDecoder(0), "`output_dim` must be a positive int"),
    (lambda: AttentionDecoder(3, steps=0), "`steps` must be a positive int"),
    (lambda: AttentionDecoder(3, hidden_size=-1), "`hidden_size` must be a positive int"),
])
def test_bad_arguments_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()
