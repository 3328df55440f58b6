"""Tests for the served `MMIN` model (paper Fig. 2(c))."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmin_tf.configs import ModelKind
from mmin_tf.layers import CascadeResidualAutoencoder, ClassifierHead, PlainAutoencoder
from mmin_tf.models import construction
from mmin_tf.models.mmin import MMIN
from tests import layer_checks
from tests.layer_checks import variable_ids

MODALITIES = layer_checks.TINY_MODALITIES
NUM_CLASSES = 4
EMBEDDING_DIM = 3 * 8
LATENT_DIM = 2 * 4  # num_blocks * autoencoder_hidden_sizes[-1]


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


_inputs = layer_checks.missing_modality_batch


def _model(kind=ModelKind.MMIN):
    config = layer_checks.tiny_model_config(kind)
    embedder = construction.build_embedder(MODALITIES, config)
    imagination = construction.build_imagination(embedder.output_size, config, "forward_imagination")
    classifier = ClassifierHead(NUM_CLASSES, config.classifier_hidden_sizes, config.classifier_dropout)
    model = MMIN(embedder, imagination, classifier, name="mmin")
    model.build()
    return model


def _trainer(kind=ModelKind.MMIN, **overrides):
    config = layer_checks.tiny_model_config(kind, **overrides)
    return layer_checks.build_teacher_and_trainer(MODALITIES, NUM_CLASSES, config)


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
    layer_checks.assert_tf_function_matches_eager(_model(), _inputs(), training=False)


def test_config_round_trip():
    _, restored = layer_checks.assert_config_round_trip(_model(), _inputs())

    assert isinstance(restored, MMIN)
    assert isinstance(restored.imagination, CascadeResidualAutoencoder)


@pytest.mark.parametrize(
    "kind, imagination_class",
    [(ModelKind.MMIN, CascadeResidualAutoencoder), (ModelKind.MMIN_AE, PlainAutoencoder)],
)
def test_keras_save_and_load_with_missing_modalities(tmp_path, kind, imagination_class):
    loaded = layer_checks.assert_keras_save_and_load(
        _model(kind), tmp_path, "mmin.keras", _inputs(), keys=("logits", "embeddings", "imagined", "latents")
    )

    assert isinstance(loaded, MMIN) and isinstance(loaded.imagination, imagination_class)


def test_served_model_holds_only_embedder_imagination_and_classifier():
    teacher, trainer = _trainer()
    model = trainer.model

    parts = (
        variable_ids(model.embedder.variables)
        | variable_ids(model.imagination.variables)
        | variable_ids(model.classifier.variables)
    )

    assert variable_ids(model.variables) == parts
    assert len(model.variables) == len(parts)
    assert not variable_ids(model.variables) & variable_ids(teacher.variables)
    assert not variable_ids(model.variables) & variable_ids(trainer.backward.variables)
    assert trainer.backward.count_params() > 0  # the backward network exists, outside the model


def test_saved_served_model_has_no_teacher_or_backward_weights(tmp_path):
    _, trainer = _trainer()
    model = trainer.model

    loaded = layer_checks.assert_keras_save_and_load(
        model, tmp_path, "mmin.keras", _inputs(), keys=("logits",)
    )

    assert len(loaded.weights) == len(model.weights)
    assert loaded.count_params() == (
        model.embedder.count_params() + model.imagination.count_params() + model.classifier.count_params()
    )
