"""The trainers' steps: losses, frozen teacher, where gradients go, per-network clipping."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmin_tf import configs, losses
from mmin_tf.data.pipeline import AVAILABILITY, TEACHER_EMBEDDING, apply_availability
from mmin_tf.models import construction
from mmin_tf.models.trainer import ClassifierTrainer
from tests import tiny_runs

MODALITIES = tiny_runs.MODALITIES
MODEL_CONFIG = tiny_runs.tiny_config("d", "o").model


def _batch(batch=6, time=5, seed=0, availability=None):
    rng = np.random.default_rng(seed)
    inputs = {}
    for spec in MODALITIES:
        inputs[spec.name] = tf.constant(rng.normal(size=(batch, time, spec.feature_dim)), tf.float32)
        inputs[spec.length_key] = tf.constant(rng.integers(1, time + 1, size=batch), tf.int32)
    if availability is None:  # rows cycle through a, v, t, av, at, vt
        table = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]]
        availability = [table[i % 6] for i in range(batch)]
    inputs[AVAILABILITY] = tf.constant(np.asarray(availability, bool))
    labels = tf.constant(rng.integers(0, 4, size=batch), tf.int32)
    return inputs, labels


def _teacher():
    return construction.build_utterance_fusion(MODALITIES, 4, MODEL_CONFIG)


def _mmin_trainer(kind=configs.ModelKind.MMIN, finetune=True, **model_overrides):
    config = dataclasses.replace(MODEL_CONFIG, kind=kind, **model_overrides)
    trainer = construction.build_mmin_trainer(
        _teacher(), 4, config, configs.LossConfig(), clip_norm=1.0, finetune_encoders=finetune
    )
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    return trainer


def test_mmin_step_returns_finite_losses_and_keeps_teacher_frozen():
    trainer = _mmin_trainer()
    teacher_before = [w.copy() for w in trainer.teacher.get_weights()]
    student_before = [w.copy() for w in trainer.model.get_weights()]
    for seed in range(2):
        logs = trainer.train_on_batch(*_batch(seed=seed), return_dict=True)
    for name in ("loss", "ce_loss", "forward_loss", "backward_loss"):
        assert np.isfinite(logs[name]), name
    assert logs["backward_loss"] > 0
    for before, after in zip(teacher_before, trainer.teacher.get_weights()):
        np.testing.assert_array_equal(before, after)
    changed = [not np.array_equal(b, a) for b, a in zip(student_before, trainer.model.get_weights())]
    assert all(changed)


def test_gradient_reaches_exactly_the_trained_networks():
    trainer = _mmin_trainer()
    inputs, labels = _batch()
    visible = {k: v for k, v in inputs.items() if k != AVAILABILITY}
    visible = apply_availability(visible, inputs[AVAILABILITY], MODALITIES)
    teacher_variables = trainer.teacher.trainable_weights + trainer.teacher.non_trainable_weights
    with tf.GradientTape(persistent=True) as tape:
        terms, _ = trainer.compute_losses(inputs, visible, inputs[AVAILABILITY], labels, training=True)
    teacher_gradients = tape.gradient(terms["loss"], teacher_variables)
    assert all(g is None for g in teacher_gradients)
    trained = trainer.trainable_variables
    assert {id(v) for v in teacher_variables}.isdisjoint(id(v) for v in trained)
    gradients = tape.gradient(terms["loss"], trained)
    assert all(g is not None for g in gradients)
    # The cycle target h is detached: no gradient flows into it from the backward loss.
    embeddings = tf.Variable(tf.random.normal([3, 4]))
    with tf.GradientTape() as inner:
        cycle_only = losses.mmin_losses(
            labels=tf.constant([0, 1, 2]), logits=tf.zeros([3, 4]), teacher_target=tf.zeros([3, 4]),
            imagined=tf.zeros([3, 4]), embeddings=embeddings, cycle_reconstruction=tf.ones([3, 4]),
            config=configs.LossConfig(),
        )["backward_loss"]
    assert inner.gradient(cycle_only, embeddings) is None


def test_teacher_target_is_the_complementary_view():
    trainer = _mmin_trainer()
    inputs, _ = _batch()
    availability = inputs[AVAILABILITY]
    target = trainer.teacher_targets(inputs, availability).numpy()
    # Row 0 has only acoustic available: its target's acoustic slot is the teacher's embedding
    # of zeros, its visual and text slots the teacher's embedding of the real inputs.
    full = {k: v for k, v in inputs.items() if k != AVAILABILITY}
    real = trainer.teacher(full).numpy()
    none_present = {k: (v * 0 if "length" in k else v) for k, v in full.items()}
    zeros = trainer.teacher(none_present).numpy()
    width = MODEL_CONFIG.embedding_size
    np.testing.assert_allclose(target[0, :width], zeros[0, :width], atol=1e-6)
    np.testing.assert_allclose(target[0, width:], real[0, width:], atol=1e-6)


def test_frozen_encoders_are_not_trained():
    trainer = _mmin_trainer(finetune=False)
    encoder_variables = {id(v) for v in trainer.model.embedder.weights}
    assert encoder_variables.isdisjoint(id(v) for v in trainer.trainable_variables)
    before = [w.copy() for w in trainer.model.embedder.get_weights()]
    trainer.train_on_batch(*_batch())
    for b, a in zip(before, trainer.model.embedder.get_weights()):
        np.testing.assert_array_equal(b, a)


def test_nocycle_has_no_backward_loss():
    trainer = _mmin_trainer(kind=configs.ModelKind.MMIN_NOCYCLE)
    logs = trainer.train_on_batch(*_batch(), return_dict=True)
    assert logs["backward_loss"] == 0.0
    assert np.isfinite(logs["loss"])


def test_each_network_is_clipped_separately():
    model = construction.build_utterance_fusion(MODALITIES, 4, MODEL_CONFIG)
    trainer = ClassifierTrainer(model, clip_norm=1e-3)
    trainer.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0))
    inputs, labels = _batch(availability=[[1, 1, 1]] * 6)
    trainer(inputs)
    before = {id(v): v.numpy().copy() for v in trainer.trainable_variables}
    trainer.train_on_batch(inputs, labels)
    norms = []
    for network in trainer.networks():
        delta = [v.numpy() - before[id(v)] for v in network.trainable_variables]
        norms.append(np.sqrt(sum(np.sum(d * d) for d in delta)))
    # SGD with lr 1: each network moved by its clipped gradient, of norm <= clip_norm, and the
    # networks' norms are each clipped to 1e-3 (their raw gradients are far larger).
    np.testing.assert_allclose(norms, 1e-3, rtol=1e-3)


def test_classifier_trainer_hides_missing_modalities():
    no_dropout = dataclasses.replace(MODEL_CONFIG, classifier_dropout=0.0, text_cnn_dropout=0.0)
    model = construction.build_utterance_fusion(MODALITIES, 4, no_dropout)
    inputs, labels = _batch(availability=[[1, 1, 0]] * 6)
    trainer = ClassifierTrainer(model)
    trainer.compile(optimizer=keras.optimizers.SGD(0.0))
    altered = dict(inputs)
    altered["text"] = inputs["text"] * 100.0
    out = trainer.train_on_batch(inputs, labels, return_dict=True)["loss"]
    trainer.reset_metrics()
    out_altered = trainer.train_on_batch(altered, labels, return_dict=True)["loss"]
    assert out == pytest.approx(out_altered, rel=1e-6)


@pytest.mark.parametrize("encoder_rows", [configs.EncoderRows.PRESENT, configs.EncoderRows.ALL])
@pytest.mark.parametrize("cached_teacher", [False, True])
def test_mmin_step_under_mixed_bfloat16(cached_teacher, encoder_rows):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        trainer = _mmin_trainer(encoder_rows=encoder_rows)
        assert trainer.model.embedder.encoders["acoustic"].compute_dtype == "bfloat16"
        inputs, labels = _batch()
        if cached_teacher:  # as training attaches it: float32, whatever the teacher computes in
            full = {key: value for key, value in inputs.items() if key != AVAILABILITY}
            inputs[TEACHER_EMBEDDING] = tf.cast(trainer.teacher(full, training=False), tf.float32)
        logs = trainer.train_on_batch(inputs, labels, return_dict=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    for name in ("loss", "ce_loss", "forward_loss", "backward_loss"):
        assert np.isfinite(logs[name]), name


@pytest.mark.parametrize("kind, share", [
    (configs.ModelKind.MMIN, False), (configs.ModelKind.MMIN, True), (configs.ModelKind.MMIN_NOCYCLE, False),
])
def test_clipping_groups_split_the_trained_variables_exactly_once(kind, share):
    trainer = _mmin_trainer(kind=kind, share_autoencoders=share)

    grouped = [id(v) for network in trainer.networks() for v in network.trainable_variables]

    assert len(grouped) == len(set(grouped))  # no network clipped twice
    assert set(grouped) == {id(v) for v in trainer.trainable_variables}


def _built_trainer(**model_overrides):
    trainer = _mmin_trainer(**model_overrides)
    trainer(_batch()[0])  # built, as training builds it, so its weights can be saved
    return trainer


def _draw_dropout_masks(trainer):
    trainer(_batch()[0], training=True)  # each dropout layer draws a mask: its generator moves on


def test_saved_weights_carry_the_dropout_random_states(tmp_path):
    """`save_weights` (what BackupAndRestore writes) keeps where every dropout generator is, so a
    restored trainer draws the masks the uninterrupted one would draw next."""
    trainer = _built_trainer()
    _draw_dropout_masks(trainer)
    saved = [np.array(state) for state in trainer.random_states()]
    assert any(state[1] > 0 for state in saved)  # the call drew dropout masks
    path = str(tmp_path / "trainer.weights.h5")
    trainer.save_weights(path)
    _draw_dropout_masks(trainer)
    assert any((np.array(state) != value).any() for state, value in zip(trainer.random_states(), saved))

    trainer.load_weights(path)

    for state, value in zip(trainer.random_states(), saved):
        np.testing.assert_array_equal(np.array(state), value)


def test_weights_saved_without_random_states_still_load(tmp_path):
    """A backup written before the random states were saved restores the weights; the states
    stay where they are."""
    trainer = _built_trainer()
    path = str(tmp_path / "older.weights.h5")
    save_own_variables = type(trainer).save_own_variables
    type(trainer).save_own_variables = keras.Model.save_own_variables  # as before the change
    try:
        trainer.save_weights(path)
    finally:
        type(trainer).save_own_variables = save_own_variables
    weight = trainer.model.classifier.trainable_weights[0]
    value = np.array(weight)
    weight.assign(value + 1.0)
    _draw_dropout_masks(trainer)
    states = [np.array(state) for state in trainer.random_states()]

    trainer.load_weights(path)

    np.testing.assert_array_equal(np.array(weight), value)
    for state, value in zip(trainer.random_states(), states):
        np.testing.assert_array_equal(np.array(state), value)


def test_random_states_of_another_model_are_refused(tmp_path):
    path = str(tmp_path / "trainer.weights.h5")
    trainer = _built_trainer()
    trainer.save_weights(path)
    more = _built_trainer(classifier_hidden_sizes=(8, 8))  # one more dropout layer
    assert len(more.random_states()) == len(trainer.random_states()) + 1
    with pytest.raises(ValueError, match="random generator states"):
        more.load_weights(path)


def test_the_masked_imagination_loss_covers_only_the_slots_an_utterance_has():
    rng = np.random.default_rng(0)
    target, prediction = (tf.constant(rng.normal(size=(4, 6)), tf.float32) for _ in range(2))
    mask = np.ones((4, 6), bool)
    mask[1, 2:4] = mask[3, :2] = False
    squared = (target.numpy() - prediction.numpy()) ** 2
    mean = losses.imagination_loss(target, prediction, configs.ImaginationReduction.MEAN, mask)
    np.testing.assert_allclose(mean, squared[mask].mean(), rtol=1e-6)
    total = losses.imagination_loss(target, prediction, configs.ImaginationReduction.SUM, mask)
    np.testing.assert_allclose(total, (squared * mask).sum(axis=1).mean(), rtol=1e-6)
    # All ones: the unmasked loss.
    for reduction in configs.ImaginationReduction:
        np.testing.assert_allclose(losses.imagination_loss(target, prediction, reduction, np.ones((4, 6), bool)),
                                   losses.imagination_loss(target, prediction, reduction), rtol=1e-6)


def test_no_forward_gradient_reaches_the_imagined_slots_of_an_absent_modality():
    trainer = construction.build_mmin_trainer(
        _teacher(), 4, dataclasses.replace(MODEL_CONFIG, kind=configs.ModelKind.MMIN), configs.LossConfig(),
        clip_norm=1.0, finetune_encoders=True, absent_modalities=True)
    inputs, _ = _batch(batch=2, availability=[[1, 0, 0], [1, 0, 0]])
    inputs["visual_length"] = tf.constant([0, 3])  # row 0 has no visual modality in the data
    mask = trainer.target_mask(inputs).numpy()
    width = MODEL_CONFIG.embedding_size
    assert not mask[0, width:2 * width].any() and mask[0, :width].all() and mask[1].all()
    target = trainer.teacher_targets(inputs, inputs[AVAILABILITY])
    imagined = tf.Variable(tf.random.normal(target.shape))
    with tf.GradientTape() as tape:
        forward = losses.imagination_loss(target, imagined, configs.ImaginationReduction.MEAN, mask)
    gradient = tape.gradient(forward, imagined).numpy()
    assert not gradient[0, width:2 * width].any() and gradient[0, :width].any() and gradient[1].any()
    # Without absent modalities the trainer masks nothing.
    assert _mmin_trainer().target_mask(inputs) is None
