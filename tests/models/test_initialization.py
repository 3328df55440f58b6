"""The original code's initialisation: Kaiming-normal Dense/Conv kernels, PyTorch's LSTM draws."""

import keras
import numpy as np
import pytest

from mmin_tf import configs
from mmin_tf.models import construction
from mmin_tf.models.initialization import Initialization, initialize
from tests import tiny_runs


def _model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, 40))
    hidden = keras.layers.LSTM(64, return_sequences=True)(inputs)
    hidden = keras.layers.Conv1D(256, 3)(hidden)
    outputs = keras.layers.Dense(300)(keras.layers.GlobalMaxPooling1D()(hidden))
    return keras.Model(inputs, outputs)


def test_original_scheme_draws_kaiming_normal_kernels_and_zero_biases():
    model = _model()
    initialize(model, Initialization.ORIGINAL, seed=1)
    conv = model.layers[2]
    dense = model.layers[4]
    for layer, fan_in in ((conv, 3 * 64), (dense, 256)):
        kernel = np.asarray(layer.kernel)
        assert abs(kernel.std() - np.sqrt(2.0 / fan_in)) < 0.03 * np.sqrt(2.0 / fan_in)
        assert abs(kernel.mean()) < 0.01 * np.sqrt(2.0 / fan_in) * 10
        assert np.abs(kernel).max() > 2.5 * np.sqrt(2.0 / fan_in)  # a normal, not a truncated one
        np.testing.assert_array_equal(np.asarray(layer.bias), 0.0)


def test_original_scheme_draws_the_lstm_as_pytorch():
    model = _model()
    initialize(model, Initialization.ORIGINAL, seed=1)
    cell = model.layers[1].cell
    bound = 1 / np.sqrt(64)
    for weight in (cell.kernel, cell.recurrent_kernel):
        values = np.asarray(weight)
        assert values.min() >= -bound and values.max() <= bound
        assert abs(values.std() - bound / np.sqrt(3)) < 0.03 * bound
    bias = np.asarray(cell.bias)
    # b_ih + b_hh: the sum of two uniforms (a triangle on [-2b, 2b]); no unit forget bias.
    assert np.abs(bias).max() <= 2 * bound and np.abs(bias).max() > bound
    assert abs(bias.std() - bound * np.sqrt(2 / 3)) < 0.1 * bound
    assert abs(bias[64:128].mean()) < 0.3 * bound


def test_same_seed_same_weights_and_keras_leaves_them():
    first, second = _model(), _model()
    before = [np.asarray(w) for w in first.weights]
    initialize(first, Initialization.KERAS, seed=1)
    for value, weight in zip(before, first.weights):
        np.testing.assert_array_equal(value, weight)
    initialize(first, Initialization.ORIGINAL, seed=3)
    initialize(second, Initialization.ORIGINAL, seed=3)
    for a, b in zip(first.weights, second.weights):
        np.testing.assert_array_equal(a, b)
    third = _model()
    initialize(third, Initialization.ORIGINAL, seed=4)
    assert not np.array_equal(third.weights[0], first.weights[0])


def test_errors():
    with pytest.raises(TypeError, match="must be an Initialization"):
        initialize(_model(), "original", seed=0)
    with pytest.raises(ValueError, match="Build 'dense' before initialising"):
        initialize(keras.layers.Dense(3, name="dense"), Initialization.ORIGINAL, seed=0)


def test_mmin_copies_the_teacher_s_encoders_and_initialises_the_rest():
    keras.utils.set_random_seed(0)
    config = configs.ModelConfig(kind=configs.ModelKind.MMIN, initialization=Initialization.ORIGINAL,
                                 embedding_size=8, autoencoder_hidden_sizes=(32, 16), num_blocks=2)
    teacher = construction.build_utterance_fusion(tiny_runs.MODALITIES, 4, configs.ModelConfig(
        kind=configs.ModelKind.BASELINE, initialization=Initialization.ORIGINAL, embedding_size=8))
    np.testing.assert_array_equal(teacher.classifier.output_layer.bias, 0.0)
    trainer = construction.build_mmin_trainer(teacher, 4, config, configs.LossConfig(), 1.0, True)
    for student, original in zip(trainer.model.embedder.weights, teacher.embedder.weights):
        np.testing.assert_array_equal(student, original)
    for network in (trainer.model.imagination, trainer.backward, trainer.model.classifier):
        dense = [layer for layer in network._flatten_layers() if isinstance(layer, keras.layers.Dense)][0]
        fan_in = dense.kernel.shape[0]
        assert abs(np.asarray(dense.kernel).std() - np.sqrt(2 / fan_in)) < 0.15 * np.sqrt(2 / fan_in)
    # The backward network is drawn separately from the forward one.
    assert not np.array_equal(trainer.backward.weights[0], trainer.model.imagination.weights[0])


def test_configs_carry_the_settings_and_read_runs_without_them(tmp_path):
    config = tiny_runs.tiny_config(tmp_path, tmp_path / "run", kind=configs.ModelKind.MMIN)
    config = configs.TrainConfig.from_json({
        **config.to_json(),
        "model": {**config.to_json()["model"], "initialization": "original"},
        "optimization": {**config.to_json()["optimization"], "epsilon": 1e-8},
    })
    assert config.model.initialization is Initialization.ORIGINAL and config.optimization.epsilon == 1e-8
    old = config.to_json()
    del old["model"]["initialization"], old["optimization"]["epsilon"]
    restored = configs.TrainConfig.from_json(old)
    assert restored.model.initialization is Initialization.KERAS and restored.optimization.epsilon == 1e-7
    with pytest.raises(ValueError, match="`epsilon` must be positive"):
        configs.OptimizationConfig(1, 1, 1e-3, 0.9, 1.0, epsilon=0.0)
    with pytest.raises(TypeError, match="`initialization` must be an Initialization"):
        configs.ModelConfig(kind=configs.ModelKind.MMIN, initialization="original")
