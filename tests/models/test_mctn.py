"""`MCTN` (served) and `MCTNTrainer`: shapes, serialization, what the model reads, one step."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmin_tf import configs, losses
from mmin_tf.data.pipeline import AVAILABILITY
from mmin_tf.layers import AttentionDecoder, ClassifierHead, RecurrentAttentionPooling, TranslationEncoder
from mmin_tf.models import MCTN, construction
from mmin_tf.models.mctn_trainer import MCTNTrainer
from tests import layer_checks

MODALITIES = layer_checks.TINY_MODALITIES  # acoustic 3, visual 4, text 5
MODEL_CONFIG = layer_checks.tiny_model_config(configs.ModelKind.MCTN)
MCTN_CONFIG = configs.MCTNConfig(steps=6, hidden_size=5)
NORMALIZATION = {"acoustic": {"mean": [0.1, -0.2, 0.3], "std": [1.0, 2.0, 0.5]}}


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _model(condition):
    return construction.build_mctn(MODALITIES, 4, condition, MODEL_CONFIG, MCTN_CONFIG, NORMALIZATION)


def _trainer(condition):
    trainer = construction.build_mctn_trainer(_model(condition), MODEL_CONFIG, MCTN_CONFIG, 1.0, 1.0)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)  # tiny: tracing costs more
    return trainer


def _inputs(seed=0, time=7):
    """Every modality present in every row, lengths 1..time (different per modality: frame rates)."""
    lengths = {spec.name: list(np.random.default_rng(seed + i).integers(1, time + 1, size=5))
               for i, spec in enumerate(MODALITIES)}
    return layer_checks.zero_padded_modality_inputs(MODALITIES, lengths, seed, time)


@pytest.mark.parametrize("condition, levels, width", [("at", 1, 8), ("vt", 1, 9), ("a", 2, 4), ("v", 2, 4)])
def test_shapes_for_one_and_two_missing_modalities(condition, levels, width):
    model = _model(condition)
    outputs = model(_inputs())
    assert model.translation_width == width  # max(source width, first target's width)
    assert tuple(outputs["logits"].shape) == (5, 4)
    assert tuple(outputs["source"].shape) == (5, 6, sum(s.feature_dim for s in model.source_specs))
    assert len(outputs["levels"]) == levels == len(model.encoders)
    for level in outputs["levels"]:
        assert tuple(level.shape) == (5, 6, 5)
    np.testing.assert_array_equal(outputs["joint"].numpy(), outputs["levels"][-1].numpy())
    graph = tf.function(lambda inputs: model(inputs)["logits"])(_inputs())
    np.testing.assert_allclose(graph.numpy(), outputs["logits"].numpy(), atol=1e-6)


def test_source_is_the_normalized_resampled_modalities_concatenated_per_step():
    model = _model("at")
    inputs = _inputs()
    source = model(inputs)["source"].numpy()
    stats = NORMALIZATION["acoustic"]
    acoustic = (inputs["acoustic"] - np.array(stats["mean"])) / np.array(stats["std"])
    expected_acoustic = model.resampler(acoustic.astype(np.float32), inputs["acoustic_length"]).numpy()
    expected_text = model.resampler(inputs["text"], inputs["text_length"]).numpy()
    np.testing.assert_allclose(source, np.concatenate([expected_acoustic, expected_text], -1), atol=1e-5)


@pytest.mark.parametrize("condition", ["at", "v"])
def test_the_missing_modalities_inputs_are_ignored(condition):
    model = _model(condition)
    inputs = _inputs()
    expected = model(inputs)["logits"].numpy()
    changed = dict(inputs)
    for spec in model.target_specs:
        changed[spec.name] = np.random.default_rng(9).normal(size=(5, 11, spec.feature_dim)).astype(np.float32)
        changed[spec.length_key] = np.full(5, 11, np.int32)
    np.testing.assert_array_equal(model(changed)["logits"].numpy(), expected)
    for spec in model.target_specs:  # or absent, as in a served request without them
        changed[spec.name] = np.zeros((5, 0, spec.feature_dim), np.float32)
        changed[spec.length_key] = np.zeros(5, np.int32)
    np.testing.assert_array_equal(model(changed)["logits"].numpy(), expected)
    source = model.source_specs[0]
    changed[source.name] = changed[source.name] + 1.0
    assert not np.allclose(model(changed)["logits"].numpy(), expected)  # the sources are read


def test_config_round_trip_and_keras_file(tmp_path):
    model = _model("a")
    restored = MCTN.from_config(model.get_config())
    restored.build()
    restored.set_weights(model.get_weights())
    layer_checks.assert_outputs_close(restored(_inputs()), model(_inputs()), keys=["logits", "joint", "source"])
    assert restored.condition == "a" and restored.normalization == NORMALIZATION
    loaded = layer_checks.assert_keras_save_and_load(model, str(tmp_path), "mctn.keras", _inputs(), keys=["logits"])
    assert isinstance(loaded, MCTN) and loaded.target_names == ("visual", "text")


def test_bad_constructions_are_refused():
    pooling, classifier = RecurrentAttentionPooling(5), ClassifierHead(4, (8,))
    with pytest.raises(ValueError, match="the full condition has none missing"):
        MCTN(MODALITIES, "avt", [], pooling, classifier)
    with pytest.raises(ValueError, match=r"one encoder per missing modality \(\['visual', 'text'\]\)"):
        MCTN(MODALITIES, "a", [TranslationEncoder(5)], pooling, classifier)
    with pytest.raises(ValueError, match="distinct modality letters"):
        MCTN(MODALITIES, "ax", [TranslationEncoder(5)], pooling, classifier)
    with pytest.raises(ValueError, match="Normalization statistics of 'acoustic' must have 3 values"):
        MCTN(MODALITIES, "at", [TranslationEncoder(5)], pooling, classifier,
             normalization={"acoustic": {"mean": [0.0], "std": [1.0]}})
    with pytest.raises(ValueError, match=r"`normalization` names unknown modalities \['audio'\]"):
        MCTN(MODALITIES, "at", [TranslationEncoder(5)], pooling, classifier,
             normalization={"audio": {"mean": [0.0], "std": [1.0]}})
    model = _model("at")
    with pytest.raises(ValueError, match=r"decoders of \[8\] features"):
        MCTNTrainer(model, [], MCTN_CONFIG)
    with pytest.raises(ValueError, match="must decode the model's 6 steps. Received: \\[2\\]"):
        MCTNTrainer(model, [AttentionDecoder(8, steps=2)], MCTN_CONFIG)


@pytest.mark.parametrize("condition", ["at", "a"])
def test_one_training_step_returns_finite_losses_and_trains_every_network(condition):
    trainer = _trainer(condition)
    inputs = _inputs()
    inputs[AVAILABILITY] = np.tile([[code in condition for code in "avt"]], (5, 1))
    labels = np.array([0, 1, 2, 3, 0], np.int32)
    before = [v.numpy().copy() for v in trainer.trainable_variables]
    logs = trainer.train_on_batch(inputs, labels, return_dict=True)
    for name in ("loss", "ce_loss", "translation_loss", "cycle_loss", "second_translation_loss"):
        assert np.isfinite(logs[name]), name
    assert logs["translation_loss"] > 0 and logs["cycle_loss"] > 0
    assert (logs["second_translation_loss"] > 0) == (condition == "a")  # the hierarchical level
    moved = [not np.allclose(b, v.numpy()) for b, v in zip(before, trainer.trainable_variables)]
    assert all(moved), [v.path for v, m in zip(trainer.trainable_variables, moved) if not m]
    decoder_ids = {id(v) for decoder in trainer.decoders for v in decoder.weights}
    assert decoder_ids.isdisjoint(id(v) for v in trainer.model.weights)  # training-only


def test_losses_follow_the_definitions():
    trainer = _trainer("a")
    inputs = _inputs()
    inputs["text_length"] = np.array([3, 0, 2, 0, 1], np.int32)  # rows 1 and 3 lack the second target
    terms, outputs = trainer.compute_losses(inputs, inputs, np.zeros(5, np.int32), training=False)
    model, weights = trainer.model, MCTN_CONFIG
    targets = model.resampled(inputs, ("visual", "text"))
    translated = trainer.decoders[0](outputs["levels"][0])[:, :, :4]
    first = weights.translation_weight * np.mean((targets["visual"] - translated) ** 2)
    np.testing.assert_allclose(terms["translation_loss"], first, rtol=1e-5)
    cycled = trainer.decoders[0](model.encoders[0](model.pad_to_translation_width(translated)))[:, :, :3]
    np.testing.assert_allclose(
        terms["cycle_loss"], weights.cycle_weight * np.mean((outputs["source"] - cycled) ** 2), rtol=1e-5)
    second = (targets["text"] - trainer.decoders[1](outputs["levels"][1])).numpy() ** 2
    np.testing.assert_allclose(
        terms["second_translation_loss"], weights.second_translation_weight * second[[0, 2, 4]].mean(), rtol=1e-5)
    ce = losses.classification_loss(tf.zeros(5, tf.int32), outputs["logits"])
    np.testing.assert_allclose(terms["ce_loss"], ce, rtol=1e-6)
    np.testing.assert_allclose(
        terms["loss"], sum(terms[k] for k in ("ce_loss", "translation_loss", "cycle_loss", "second_translation_loss")),
        rtol=1e-6)
    with pytest.raises(ValueError, match="at least one translation level"):
        losses.mctn_losses(labels=None, logits=None, translations=[], source=None, cycled=None,
                           config=weights, classification_weight=1.0)
