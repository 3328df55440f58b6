"""Checks and tiny fixtures shared by the layer and model tests (`tests/layers`, `tests/models`).

The checks assert exactly what the tests used to assert inline: outputs are compared with
`np.testing.assert_allclose(actual, expected, atol=1e-6)` unless told otherwise, key by key for
dict outputs, pairwise for tuple outputs.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from mmin_tf.configs import LossConfig, ModelConfig, ModelKind
from mmin_tf.modalities import EncoderKind, ModalitySpec
from mmin_tf.models import construction

# Tiny model fixtures --------------------------------------------------------------------------

TINY_MODALITIES = (
    ModalitySpec("acoustic", "a", 3, EncoderKind.LSTM),
    ModalitySpec("visual", "v", 4, EncoderKind.LSTM),
    ModalitySpec("text", "t", 5, EncoderKind.TEXT_CNN),
)
"""Acoustic 3 / visual 4 / text 5 features: every dim different, so a mix-up changes a shape."""

MISSING_MODALITY_LENGTHS = {"acoustic": [4, 0, 2, 5, 0], "visual": [3, 1, 0, 0, 2], "text": [5, 2, 0, 3, 1]}
"""Frames per row for `TINY_MODALITIES`: row 0 full; rows 1-4 miss one or two modalities (length 0)."""


def tiny_model_config(kind=ModelKind.MMIN, **overrides):
    """A `ModelConfig` of `kind` small enough for unit tests (embeddings of 8, two blocks of 8-4).

    `overrides` replace or add `ModelConfig` fields; cuDNN is off so CPU and GPU agree.
    """
    settings = dict(
        embedding_size=8,
        text_cnn_channels=4,
        text_cnn_kernel_sizes=(2, 3),
        classifier_hidden_sizes=(8,),
        autoencoder_hidden_sizes=(8, 4),
        num_blocks=2,
        use_cudnn="false",
    )
    settings.update(overrides)
    return ModelConfig(kind=kind, **settings)


def build_teacher_and_trainer(modalities, num_classes, config, normalization=None):
    """An `UtteranceFusion` teacher and the `MMINTrainer` built on it from `config`.

    The trainer uses the default `LossConfig`, `clip_norm=1.0` and fine-tuned encoders.

    Returns:
        (teacher, trainer).
    """
    teacher = construction.build_utterance_fusion(modalities, num_classes, config, normalization)
    trainer = construction.build_mmin_trainer(
        teacher, num_classes, config, LossConfig(), clip_norm=1.0, finetune_encoders=True
    )
    return teacher, trainer


def variable_ids(variables):
    """The set of `id`s of `variables`: to compare which variable objects two layers hold."""
    return {id(variable) for variable in variables}


# Inputs ---------------------------------------------------------------------------------------


def random_vectors(batch, dim, seed=0):
    """`(batch, dim)` standard-normal float32 vectors from `np.random.default_rng(seed)`."""
    return np.random.default_rng(seed).normal(size=(batch, dim)).astype(np.float32)


def random_padded_features(rng, lengths, time, feature_dim, padding=0.0):
    """`(batch, time, feature_dim)` random frames; `padding` beyond each row's length.

    Returns:
        (features, lengths as an int32 array).
    """
    features = rng.normal(size=(len(lengths), time, feature_dim)).astype(np.float32)
    for row, length in enumerate(lengths):
        features[row, length:] = padding
    return features, np.asarray(lengths, np.int32)


def zero_padded_modality_inputs(modalities, lengths, seed=0, time=5):
    """A model input dict: random frames per modality, zeroed beyond `lengths[name]` per row.

    Returns:
        {spec.name: (batch, time, feature_dim) float32, spec.length_key: (batch,) int32}.
    """
    rng = np.random.default_rng(seed)
    inputs = {}
    for spec in modalities:
        rows = np.asarray(lengths[spec.name], np.int32)
        features = rng.normal(size=(len(rows), time, spec.feature_dim)).astype(np.float32)
        features *= (np.arange(time)[None, :] < rows[:, None])[:, :, None]  # zero padding
        inputs[spec.name] = features
        inputs[spec.length_key] = rows
    return inputs


def missing_modality_batch(seed=0, time=5):
    """The 5-row `TINY_MODALITIES` batch with `MISSING_MODALITY_LENGTHS`, zero padded to `time` frames."""
    return zero_padded_modality_inputs(TINY_MODALITIES, MISSING_MODALITY_LENGTHS, seed, time)


# Functional wrappers --------------------------------------------------------------------------


def vector_functional_model(layer, input_dim, output_names=None):
    """A `keras.Model` around `layer` on `(None, input_dim)` vectors.

    With `output_names`, the layer's tuple outputs become a dict under those names (so each can
    get its own loss); otherwise the layer's outputs are the model's as they are.
    """
    inputs = keras.Input((input_dim,))
    outputs = layer(inputs)
    if output_names is not None:
        outputs = dict(zip(output_names, outputs))
    return keras.Model(inputs, outputs)


def sequence_functional_model(encoder, feature_dim):
    """A `keras.Model` around a sequence `encoder(features, lengths)`.

    Inputs: `[features (None, None, feature_dim) named "features", lengths (None,) int32 named "lengths"]`.
    """
    features = keras.Input((None, feature_dim), name="features")
    lengths = keras.Input((), dtype="int32", name="lengths")
    return keras.Model([features, lengths], encoder(features, lengths))


# Checks ---------------------------------------------------------------------------------------


def assert_outputs_close(actual, expected, keys=None, atol=1e-6):
    """`assert_allclose(actual, expected, atol=atol)` on layer outputs.

    Dict outputs are compared at `keys` (default: every key of `expected`), tuple or list outputs
    pairwise, anything else as one tensor.
    """
    if isinstance(expected, dict):
        for key in expected if keys is None else keys:
            np.testing.assert_allclose(actual[key].numpy(), expected[key].numpy(), atol=atol)
    elif isinstance(expected, (tuple, list)):
        for actual_tensor, expected_tensor in zip(actual, expected):
            np.testing.assert_allclose(actual_tensor.numpy(), expected_tensor.numpy(), atol=atol)
    else:
        np.testing.assert_allclose(actual.numpy(), expected.numpy(), atol=atol)


def assert_tf_function_matches_eager(layer, *inputs, training=None):
    """`tf.function(layer)(*inputs)` equals the eager `layer(*inputs)` (every output).

    `training`, when given, is passed to the traced call only; the eager call keeps the
    layer's default.
    """
    kwargs = {} if training is None else {"training": training}
    graph = tf.function(lambda *args: layer(*args, **kwargs))(*inputs)
    eager = layer(*inputs)
    assert_outputs_close(graph, eager)


def assert_config_round_trip(layer, *inputs, build_args=()):
    """`type(layer).from_config(layer.get_config())`, built and given the layer's weights,
    computes the layer's outputs on `inputs`.

    Returns:
        (config, restored): for the caller's own checks of the config's fields.
    """
    config = layer.get_config()
    restored = type(layer).from_config(config)
    restored.build(*build_args)
    restored.set_weights(layer.get_weights())
    assert_outputs_close(restored(*inputs), layer(*inputs))
    return config, restored


def assert_keras_save_and_load(model, directory, filename, inputs, keys=None):
    """`model.save` to `directory/filename` (a `.keras` file) and `keras.models.load_model` it
    back: the loaded model's outputs on `inputs` equal the model's (at `keys` for dict outputs).

    Returns:
        The loaded model, for the caller's own checks.
    """
    path = os.path.join(directory, filename)
    model.save(path)
    loaded = keras.models.load_model(path)
    assert_outputs_close(loaded(inputs), model(inputs), keys)
    return loaded


def assert_one_training_step_changes_every_weight(model, x, y, loss):
    """Compile `model` with SGD(0.1) and `loss`, train on one batch `(x, y)`: the loss is finite
    and every trainable variable has moved (`not np.allclose(before, after)`)."""
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss)
    before = [v.numpy().copy() for v in model.trainable_variables]

    loss_value = model.train_on_batch(x, y)

    assert np.isfinite(loss_value)
    for old, variable in zip(before, model.trainable_variables):
        assert not np.allclose(old, variable.numpy()), variable.path
