"""Tests for the served `UtteranceFusion` model (baselines and MMIN's teacher)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmin_tf.configs import ModelKind
from mmin_tf.models import construction
from mmin_tf.models.utterance_fusion import UtteranceFusion
from tests import layer_checks

MODALITIES = layer_checks.TINY_MODALITIES
NUM_CLASSES = 4
CONFIG = layer_checks.tiny_model_config(ModelKind.BASELINE)


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


_inputs = layer_checks.missing_modality_batch


def _model():
    return construction.build_utterance_fusion(MODALITIES, NUM_CLASSES, CONFIG)


def test_output_keys_and_shapes():
    model = _model()

    outputs = model(_inputs())

    assert set(outputs) == {"logits", "embeddings"}
    assert outputs["logits"].shape == (5, NUM_CLASSES)
    assert outputs["embeddings"].shape == (5, 3 * CONFIG.embedding_size)
    assert outputs["logits"].dtype == tf.float32
    assert model.modalities == MODALITIES


def test_logits_classify_the_embeddings():
    model = _model()
    inputs = _inputs()

    outputs = model(inputs)

    np.testing.assert_allclose(outputs["embeddings"].numpy(), model.embedder(inputs).numpy(), atol=1e-6)
    np.testing.assert_allclose(
        outputs["logits"].numpy(), model.classifier(outputs["embeddings"]).numpy(), atol=1e-6
    )


def test_tf_function_matches_eager():
    layer_checks.assert_tf_function_matches_eager(_model(), _inputs(), training=False)


def test_config_round_trip():
    _, restored = layer_checks.assert_config_round_trip(_model(), _inputs())

    assert isinstance(restored, UtteranceFusion)


def test_keras_save_and_load_with_missing_modalities(tmp_path):
    normalization = {"acoustic": {"mean": [0.5, -1.0, 2.0], "std": [1.5, 0.5, 2.0]}}
    model = construction.build_utterance_fusion(MODALITIES, NUM_CLASSES, CONFIG, normalization)

    loaded = layer_checks.assert_keras_save_and_load(
        model, tmp_path, "utterance_fusion.keras", _inputs(), keys=("logits", "embeddings")
    )

    assert isinstance(loaded, UtteranceFusion)
    assert loaded.embedder.normalization == model.embedder.normalization
