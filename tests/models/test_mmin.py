"""Tests for the served `MMIN` model (paper Fig. 2(c))."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmin_tf.configs import LossConfig, ModelConfig, ModelKind
from mmin_tf.layers import CascadeResidualAutoencoder, ClassifierHead, PlainAutoencoder
from mmin_tf.models import construction
from mmin_tf.models.mmin import MMIN
from mmin_tf.modalities import EncoderKind, ModalitySpec

MODALITIES = (
    ModalitySpec("acoustic", "a", 3, EncoderKind.LSTM),
    ModalitySpec("visual", "v", 4, EncoderKind.LSTM),
    ModalitySpec("text", "t", 5, EncoderKind.TEXT_CNN),
)
NUM_CLASSES = 4
EMBEDDING_DIM = 3 * 8
LATENT_DIM = 2 * 4  # num_blocks * autoencoder_hidden_sizes[-1]
# Row 0 full; rows 1-4 miss one or two modalities (length 0).
LENGTHS = {"acoustic": [4, 0, 2, 5, 0], "visual": [3, 1, 0, 0, 2], "text": [5, 2, 0, 3, 1]}


def _config(kind=ModelKind.MMIN, **overrides):
    return ModelConfig(
        kind=kind,
        embedding_size=8,
        text_cnn_channels=4,
        text_cnn_kernel_sizes=(2, 3),
        classifier_hidden_sizes=(8,),
        autoencoder_hidden_sizes=(8, 4),
        num_blocks=2,
        use_cudnn="false",
        **overrides,
    )


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _inputs(seed=0, time=5):
    rng = np.random.default_rng(seed)
    inputs = {}
    for spec in MODALITIES:
        lengths = np.asarray(LENGTHS[spec.name], np.int32)
        features = rng.normal(size=(len(lengths), time, spec.feature_dim)).astype(np.float32)
        features *= (np.arange(time)[None, :] < lengths[:, None])[:, :, None]  # zero padding
        inputs[spec.name] = features
        inputs[spec.length_key] = lengths
    return inputs


def _model(kind=ModelKind.MMIN):
    config = _config(kind)
    embedder = construction.build_embedder(MODALITIES, config)
    imagination = construction.build_imagination(embedder.output_size, config, "forward_imagination")
    classifier = ClassifierHead(NUM_CLASSES, config.classifier_hidden_sizes, config.classifier_dropout)
    model = MMIN(embedder, imagination, classifier, name="mmin")
    model.build()
    return model


def _trainer(kind=ModelKind.MMIN, **overrides):
    config = _config(kind, **overrides)
    teacher = construction.build_utterance_fusion(MODALITIES, NUM_CLASSES, config)
    trainer = construction.build_mmin_trainer(
        teacher, NUM_CLASSES, config, LossConfig(), clip_norm=1.0, finetune_encoders=True
    )
    return teacher, trainer


@pytest.mark.parametrize("kind", [ModelKind.MMIN, ModelKind.MMIN_AE])
def test_output_keys_and_shapes(kind):
    model = _model(kind)

    outputs = model(_inputs())

    assert set(outputs) == {"logits", "embeddings", "imagined", "latents"}
    assert outputs["logits"].shape == (5, NUM_CLASSES)
    assert outputs["embeddings"].shape == (5, EMBEDDING_DIM)
    assert outputs["imagined"].shape == (5, EMBEDDING_DIM)
    assert outputs["latents"].shape == (5, LATENT_DIM)
    assert all(tensor.dtype == tf.float32 for tensor in outputs.values())


def test_outputs_follow_embedder_imagination_classifier():
    model = _model()
    inputs = _inputs()

    outputs = model(inputs)
    embeddings = model.embedder(inputs)
    imagination = model.imagination(embeddings)

    np.testing.assert_allclose(outputs["embeddings"].numpy(), embeddings.numpy(), atol=1e-6)
    np.testing.assert_allclose(outputs["imagined"].numpy(), imagination["reconstruction"].numpy(), atol=1e-6)
    np.testing.assert_allclose(outputs["latents"].numpy(), imagination["latents"].numpy(), atol=1e-6)
    np.testing.assert_allclose(
        outputs["logits"].numpy(), model.classifier(imagination["latents"]).numpy(), atol=1e-6
    )


def test_tf_function_matches_eager():
    model = _model()
    inputs = _inputs()

    graph = tf.function(lambda x: model(x, training=False))(inputs)
    eager = model(inputs)

    for key in eager:
        np.testing.assert_allclose(graph[key].numpy(), eager[key].numpy(), atol=1e-6)


def test_config_round_trip():
    model = _model()
    inputs = _inputs()

    restored = MMIN.from_config(model.get_config())
    restored.build()
    restored.set_weights(model.get_weights())

    assert isinstance(restored.imagination, CascadeResidualAutoencoder)
    expected, actual = model(inputs), restored(inputs)
    for key in expected:
        np.testing.assert_allclose(actual[key].numpy(), expected[key].numpy(), atol=1e-6)


@pytest.mark.parametrize(
    "kind, imagination_class",
    [(ModelKind.MMIN, CascadeResidualAutoencoder), (ModelKind.MMIN_AE, PlainAutoencoder)],
)
def test_keras_save_and_load_with_missing_modalities(tmp_path, kind, imagination_class):
    model = _model(kind)
    inputs = _inputs()
    path = os.path.join(tmp_path, "mmin.keras")

    model.save(path)
    loaded = keras.models.load_model(path)

    assert isinstance(loaded, MMIN) and isinstance(loaded.imagination, imagination_class)
    expected, actual = model(inputs), loaded(inputs)
    for key in ("logits", "embeddings", "imagined", "latents"):
        np.testing.assert_allclose(actual[key].numpy(), expected[key].numpy(), atol=1e-6)


def _ids(variables):
    return {id(variable) for variable in variables}


def test_served_model_holds_only_embedder_imagination_and_classifier():
    teacher, trainer = _trainer()
    model = trainer.model

    parts = _ids(model.embedder.variables) | _ids(model.imagination.variables) | _ids(model.classifier.variables)

    assert _ids(model.variables) == parts
    assert len(model.variables) == len(parts)
    assert not _ids(model.variables) & _ids(teacher.variables)
    assert not _ids(model.variables) & _ids(trainer.backward.variables)
    assert trainer.backward.count_params() > 0  # the backward network exists, outside the model


def test_saved_served_model_has_no_teacher_or_backward_weights(tmp_path):
    _, trainer = _trainer()
    model = trainer.model
    path = os.path.join(tmp_path, "mmin.keras")

    model.save(path)
    loaded = keras.models.load_model(path)

    assert len(loaded.weights) == len(model.weights)
    assert loaded.count_params() == (
        model.embedder.count_params() + model.imagination.count_params() + model.classifier.count_params()
    )
    inputs = _inputs()
    np.testing.assert_allclose(loaded(inputs)["logits"].numpy(), model(inputs)["logits"].numpy(), atol=1e-6)
