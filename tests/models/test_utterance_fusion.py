"""Tests for the served `UtteranceFusion` model (baselines and MMIN's teacher)."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmin_tf.configs import ModelConfig, ModelKind
from mmin_tf.models import construction
from mmin_tf.models.utterance_fusion import UtteranceFusion
from mmin_tf.modalities import EncoderKind, ModalitySpec

MODALITIES = (
    ModalitySpec("acoustic", "a", 3, EncoderKind.LSTM),
    ModalitySpec("visual", "v", 4, EncoderKind.LSTM),
    ModalitySpec("text", "t", 5, EncoderKind.TEXT_CNN),
)
NUM_CLASSES = 4
CONFIG = ModelConfig(
    kind=ModelKind.BASELINE,
    embedding_size=8,
    text_cnn_channels=4,
    text_cnn_kernel_sizes=(2, 3),
    classifier_hidden_sizes=(8,),
    autoencoder_hidden_sizes=(8, 4),
    num_blocks=2,
    use_cudnn="false",
)
# Row 0 full; rows 1-4 miss one or two modalities (length 0).
LENGTHS = {"acoustic": [4, 0, 2, 5, 0], "visual": [3, 1, 0, 0, 2], "text": [5, 2, 0, 3, 1]}


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
    model = _model()
    inputs = _inputs()

    graph = tf.function(lambda x: model(x, training=False))(inputs)
    eager = model(inputs)

    for key in eager:
        np.testing.assert_allclose(graph[key].numpy(), eager[key].numpy(), atol=1e-6)


def test_config_round_trip():
    model = _model()
    inputs = _inputs()

    restored = UtteranceFusion.from_config(model.get_config())
    restored.build()
    restored.set_weights(model.get_weights())

    expected, actual = model(inputs), restored(inputs)
    for key in expected:
        np.testing.assert_allclose(actual[key].numpy(), expected[key].numpy(), atol=1e-6)


def test_keras_save_and_load_with_missing_modalities(tmp_path):
    normalization = {"acoustic": {"mean": [0.5, -1.0, 2.0], "std": [1.5, 0.5, 2.0]}}
    model = construction.build_utterance_fusion(MODALITIES, NUM_CLASSES, CONFIG, normalization)
    inputs = _inputs()
    path = os.path.join(tmp_path, "utterance_fusion.keras")

    model.save(path)
    loaded = keras.models.load_model(path)

    assert isinstance(loaded, UtteranceFusion)
    assert loaded.embedder.normalization == model.embedder.normalization
    expected, actual = model(inputs), loaded(inputs)
    for key in ("logits", "embeddings"):
        np.testing.assert_allclose(actual[key].numpy(), expected[key].numpy(), atol=1e-6)
