"""The six-conditions regime with one encoder pass per utterance equals the expanded rows."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmin_tf import configs
from mmin_tf.data import pipeline
from mmin_tf.data.pipeline import AVAILABILITY, CONDITION_MASK, TEACHER_EMBEDDING, apply_availability
from mmin_tf.models import construction
from tests import tiny_runs

MODALITIES = tiny_runs.MODALITIES
TABLE = np.asarray([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], bool)


def _trainer(dropout=0.0, absent=False, **overrides):
    keras.utils.set_random_seed(0)
    config = dataclasses.replace(tiny_runs.tiny_config("d", "o").model, kind=configs.ModelKind.MMIN,
                                 text_cnn_dropout=dropout, classifier_dropout=dropout, **overrides)
    teacher = construction.build_utterance_fusion(MODALITIES, 4, dataclasses.replace(config, kind=configs.ModelKind.BASELINE))
    return construction.build_mmin_trainer(teacher, 4, config, configs.LossConfig(), 1.0, True, absent_modalities=absent)


def _utterances(batch=3, time=6, seed=0, absent_visual=()):
    rng = np.random.default_rng(seed)
    inputs = {}
    for spec in MODALITIES:
        inputs[spec.name] = rng.normal(size=(batch, time, spec.feature_dim)).astype(np.float32)
        inputs[spec.length_key] = rng.integers(2, time + 1, size=batch).astype(np.int32)
    for row in absent_visual:
        inputs["visual_length"][row] = 0
    return inputs, rng.integers(0, 4, size=batch).astype(np.int32)


def _grouped(trainer, inputs, labels):
    present = np.stack([inputs[spec.length_key] > 0 for spec in MODALITIES], axis=1)
    availability = np.zeros((len(labels), 6, 3), bool)
    mask = np.zeros((len(labels), 6), bool)
    for row, has in enumerate(present):
        allowed = [c for c in TABLE if not np.any(c & ~has)]
        availability[row, :len(allowed)] = allowed
        mask[row, :len(allowed)] = True
    grouped = {k: tf.constant(v) for k, v in inputs.items()}
    grouped.update({AVAILABILITY: tf.constant(availability), CONDITION_MASK: tf.constant(mask)})
    return grouped, tf.constant(labels)


def _expanded(inputs, labels, grouped):
    rows = np.argwhere(grouped[CONDITION_MASK].numpy())
    expanded = {k: tf.constant(v[rows[:, 0]]) for k, v in inputs.items()}
    expanded[AVAILABILITY] = tf.constant(grouped[AVAILABILITY].numpy()[rows[:, 0], rows[:, 1]])
    return expanded, tf.constant(labels[rows[:, 0]])


@pytest.mark.parametrize("cached_teacher, absent_visual", [(False, ()), (True, ()), (True, (1,))])
def test_grouped_losses_and_gradients_equal_the_expanded_rows(cached_teacher, absent_visual):
    trainer = _trainer(absent=bool(absent_visual))
    inputs, labels = _utterances(absent_visual=absent_visual)
    if cached_teacher:
        inputs[TEACHER_EMBEDDING] = trainer.teacher({k: tf.constant(v) for k, v in inputs.items()}).numpy()
    grouped, grouped_labels = _grouped(trainer, inputs, labels)
    expanded, expanded_labels = _expanded(inputs, labels, grouped)
    visible = apply_availability({k: v for k, v in expanded.items() if k != AVAILABILITY}, expanded[AVAILABILITY], MODALITIES)
    variables = trainer.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        ours, _, row_labels = trainer.compute_grouped_losses(grouped, grouped_labels, training=True)
        theirs, _ = trainer.compute_losses(expanded, visible, expanded[AVAILABILITY], expanded_labels, training=True)
    np.testing.assert_array_equal(row_labels, expanded_labels)
    for name in ("loss", "ce_loss", "forward_loss", "backward_loss"):
        np.testing.assert_allclose(ours[name], theirs[name], rtol=2e-5, err_msg=name)
    for variable, a, b in zip(variables, tape.gradient(ours["loss"], variables), tape.gradient(theirs["loss"], variables)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=variable.path)
    if absent_visual:  # the utterance without visual gets 3 rows (a, t, at)
        assert int(tf.shape(row_labels)[0]) == 6 + 3 + 6


def test_with_dropout_every_row_draws_its_own_masks():
    trainer = _trainer(dropout=0.5)
    inputs, labels = _utterances(batch=1)
    grouped, grouped_labels = _grouped(trainer, inputs, labels)
    # The text slot of the rows where text is available: same pooled features, different masks.
    embedder = trainer.model.embedder
    spec = MODALITIES[2]
    pooled, _ = embedder.pool_present_rows(spec, tf.constant(inputs["text"]), tf.constant(inputs["text_length"]))
    dropped = embedder.encoders["text"].dropout_layer(tf.repeat(pooled, 4, axis=0), training=True).numpy()
    assert len({(row != 0).tobytes() for row in dropped}) > 1  # masks differ between the rows
    _, outputs, _ = trainer.compute_grouped_losses(grouped, grouped_labels, training=True)
    assert len({row.tobytes() for row in outputs["logits"].numpy()}) == 6


def test_the_grouped_dataset_carries_every_condition_once_per_utterance(tiny_dataset):
    data_dir, info = tiny_dataset
    examples = pipeline.read_split(data_dir, info).cache()
    conditions = pipeline.training_conditions(pipeline.ConditionMode.ALL, info.modalities)
    dataset = pipeline.make_training_dataset(examples, info.modalities, conditions, pipeline.Batching(12),
                                             sample_one_condition=False, seed=0, group_conditions=True)
    batches = list(dataset)
    assert all(int(b[1].shape[0]) <= 2 for b in batches)  # 12 // 6 utterances per batch
    assert sum(int(b[1].shape[0]) for b in batches) == 40
    for inputs, _ in batches:
        assert inputs[AVAILABILITY].shape[1:] == (6, 3)
        np.testing.assert_array_equal(inputs[AVAILABILITY][0].numpy(), TABLE)
        assert inputs[CONDITION_MASK].numpy().all()
    with pytest.raises(ValueError, match="needs sample_one_condition=False"):
        pipeline.make_training_dataset(examples, info.modalities, conditions, pipeline.Batching(12),
                                       sample_one_condition=True, seed=0, group_conditions=True)


def test_training_in_the_six_conditions_regime_end_to_end(tmp_path):
    tiny_runs.write_dataset(tmp_path / "data")
    config = tiny_runs.tiny_config(tmp_path / "data", tmp_path / "mmin", kind=configs.ModelKind.MMIN,
                                   condition_mode=pipeline.ConditionMode.ALL)
    from mmin_tf.training import run_training

    metrics = run_training(config)
    assert np.isfinite(metrics["missing_pooled"]["ua"])
