"""Our MMIN step and the original's dense computation give the same losses on the same batch."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmin_tf import configs
from mmin_tf.data.pipeline import AVAILABILITY, TEACHER_EMBEDDING, apply_availability
from mmin_tf.models import construction
from mmin_tf.models.reference import ReferenceMMINTrainer
from tests import tiny_runs
from tests.models.test_trainer import MODALITIES, _batch

NO_DROPOUT = dataclasses.replace(
    tiny_runs.tiny_config("d", "o").model, kind=configs.ModelKind.MMIN, classifier_dropout=0.0, text_cnn_dropout=0.0
)


def _normalization():
    rng = np.random.default_rng(3)
    return {
        "acoustic": {"mean": rng.normal(size=6).tolist(), "std": rng.uniform(0.5, 2.0, size=6).tolist()}
    }


def _trainers():
    teacher = construction.build_utterance_fusion(MODALITIES, 4, NO_DROPOUT, _normalization())
    ours = construction.build_mmin_trainer(teacher, 4, NO_DROPOUT, configs.LossConfig(), 1.0, True)
    reference = ReferenceMMINTrainer.like(ours)
    return ours, reference


@pytest.mark.parametrize("cached_teacher", [False, True])
def test_same_losses_as_the_original_computation(cached_teacher):
    ours, reference = _trainers()
    inputs, labels = _batch(batch=12, time=7, seed=4)
    if cached_teacher:
        full = {k: v for k, v in inputs.items() if k != AVAILABILITY}
        inputs = {**inputs, TEACHER_EMBEDDING: ours.teacher(full, training=False)}
    availability = inputs[AVAILABILITY]
    visible = apply_availability(inputs, availability, MODALITIES)
    ours_terms, _ = ours.compute_losses(inputs, visible, availability, labels, training=True)
    reference_terms, _ = reference.compute_losses(inputs, visible, availability, labels, training=True)
    for name in ("loss", "ce_loss", "forward_loss", "backward_loss"):
        np.testing.assert_allclose(ours_terms[name].numpy(), reference_terms[name].numpy(), rtol=1e-5, err_msg=name)


def test_reference_teacher_ignores_the_cache():
    ours, reference = _trainers()
    inputs, labels = _batch(batch=6, seed=5)
    wrong = {**inputs, TEACHER_EMBEDDING: tf.fill([6, 24], 100.0)}
    availability = inputs[AVAILABILITY]
    visible = apply_availability(inputs, availability, MODALITIES)
    clean, _ = reference.compute_losses(inputs, visible, availability, labels, training=False)
    with_cache, _ = reference.compute_losses(wrong, visible, availability, labels, training=False)
    np.testing.assert_allclose(clean["loss"].numpy(), with_cache["loss"].numpy(), rtol=1e-6)
    polluted, _ = ours.compute_losses(wrong, visible, availability, labels, training=False)
    assert polluted["forward_loss"].numpy() > 10 * clean["forward_loss"].numpy()


def test_like_keeps_the_trainers_networks_and_settings():
    teacher = construction.build_utterance_fusion(MODALITIES, 4, NO_DROPOUT, _normalization())
    ours = construction.build_mmin_trainer(teacher, 4, NO_DROPOUT, configs.LossConfig(), 0.3, False)

    reference = ReferenceMMINTrainer.like(ours)

    assert (reference.model, reference.teacher, reference.backward) == (ours.model, ours.teacher, ours.backward)
    assert (reference.clip_norm, reference.finetune_encoders) == (0.3, False)
    assert not reference.model.embedder.trainable


def test_training_on_every_row_updates_the_model_as_training_on_present_rows():
    """`EncoderRows.ALL` (the GPU choice) is a way of computing, not another model: from the
    same teacher and initial weights, two training steps leave the same weights (no dropout)."""
    teacher = construction.build_utterance_fusion(MODALITIES, 4, NO_DROPOUT, _normalization())
    trained = {}
    for encoder_rows in (configs.EncoderRows.PRESENT, configs.EncoderRows.ALL):
        config = dataclasses.replace(NO_DROPOUT, encoder_rows=encoder_rows)
        keras.utils.set_random_seed(7)  # same initial imagination and classifier weights
        trainer = construction.build_mmin_trainer(teacher, 4, config, configs.LossConfig(), 1.0, True)
        assert trainer.model.embedder.encoder_rows is encoder_rows
        trainer.compile(optimizer=keras.optimizers.Adam(1e-2))
        for seed in (4, 5):
            trainer.train_on_batch(*_batch(batch=12, time=7, seed=seed))
        trained[encoder_rows] = trainer.model.get_weights()
    keras.utils.set_random_seed(7)
    initial = construction.build_mmin_trainer(teacher, 4, NO_DROPOUT, configs.LossConfig(), 1.0, True).model
    assert all(not np.allclose(a, b) for a, b in zip(trained[configs.EncoderRows.ALL], initial.get_weights()))  # every weight trained
    for present, every in zip(trained[configs.EncoderRows.PRESENT], trained[configs.EncoderRows.ALL]):
        np.testing.assert_allclose(every, present, rtol=1e-4, atol=1e-5)
