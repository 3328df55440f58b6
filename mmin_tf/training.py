"""One training run, from a `TrainConfig` to a run directory with `metrics.json`.

Run directory layout:

    config.json          the resolved TrainConfig (and flags.txt, written by the CLI)
    normalization.json   per-dimension statistics of the fold's training split
    labels.json          the dataset's class names, in label-index order
    extraction.json      for datasets extracted from media: how their features were made
                         (dataset.json's `extraction`), carried on into exports
    best.keras           the served model at the best validation epoch
    best.json            {"epoch", "value", "metric"} of that epoch
    backup/              Keras BackupAndRestore state: a re-run resumes after the last epoch
    logs/                TensorBoard: train/ and validation/ runs, profiles on request
    metrics.json         test metrics per condition; written last, so it marks a complete run
    confusion_matrices.json
    teacher/             MMIN only, when no --pretrained_dir: the baseline trained first
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import tempfile
import warnings
from typing import Sequence

import h5py
import keras
import numpy as np
import tensorflow as tf
from absl import logging

from mmin_tf import distributed_fit, distribution, seeding
from mmin_tf import modalities as modalities_lib
from mmin_tf.atomic_files import write_json
from mmin_tf.callbacks import ConditionValidation, EpochTimer
from mmin_tf.configs import ModelKind, TrainConfig
from mmin_tf.data import format as format_lib
from mmin_tf.data import pipeline
from mmin_tf.evaluation import (
    batching_for,
    evaluated_conditions,
    model_input_signature,
    write_test_metrics,
)
from mmin_tf.models import construction
from mmin_tf.models.trainer import ClassifierTrainer
from mmin_tf.run_dir import (
    BEST_MODEL,
    BEST_STATE,
    CONFIG,
    EXTRACTION,
    LABELS,
    METRICS,
    NORMALIZATION,
    RunError,
    best_epoch,
    load_run_config,
)

def _check_config(output_dir: str, config: TrainConfig) -> None:
    """Writes config.json, or checks that an existing run in `output_dir` has the same settings."""
    path = os.path.join(output_dir, CONFIG)
    current = config.to_json()
    if os.path.exists(path):
        with open(path) as f:
            stored = json.load(f)
        try:
            # Read back through the typed config: fields added since the run began take their
            # defaults (which keep the earlier behaviour), so an older run can still resume.
            previous = TrainConfig.from_json(stored).to_json()
        except (KeyError, TypeError, ValueError) as error:
            raise RunError(f"{path!r} is not a readable run configuration ({error!r})") from error
        if previous != current:
            changed = sorted(key for key in set(previous) | set(current) if previous.get(key) != current.get(key))
            raise RunError(
                f"{output_dir!r} holds a run with other settings (differences in {changed}); "
                "use another --output_dir to start a new run"
            )
    else:
        write_json(path, current)


def teacher_config(config: TrainConfig) -> TrainConfig:
    """The baseline run MMIN trains first as its teacher when it has no `pretrained_dir`."""
    return dataclasses.replace(
        config,
        output_dir=os.path.join(config.output_dir, "teacher"),
        model=dataclasses.replace(
            config.model, kind=ModelKind.BASELINE, classifier_dropout=config.teacher_classifier_dropout
        ),
        optimization=config.teacher_optimization,
        condition_mode=None,
        pretrained_dir=None,
    )


def load_teacher(pretrained_dir: str, config: TrainConfig, info: format_lib.DatasetInfo):
    """Loads a complete baseline run of the same fold and modalities as MMIN's teacher."""
    pretrained = load_run_config(pretrained_dir)
    if pretrained["model"]["kind"] not in (ModelKind.BASELINE.value, ModelKind.AUGMENTED.value):
        raise RunError(
            f"--pretrained_dir {pretrained_dir!r} is a {pretrained['model']['kind']!r} run; "
            "MMIN needs a baseline (utterance fusion) run as its teacher"
        )
    if pretrained["data"]["fold"] != config.data.fold:
        raise RunError(
            f"--pretrained_dir {pretrained_dir!r} was trained on fold {pretrained['data']['fold']!r}, "
            f"not fold {config.data.fold!r}: its teacher has seen this fold's test speakers"
        )
    if not os.path.exists(os.path.join(pretrained_dir, METRICS)):
        raise RunError(f"--pretrained_dir {pretrained_dir!r} is not a finished run ({METRICS} missing)")
    teacher = keras.saving.load_model(os.path.join(pretrained_dir, BEST_MODEL))
    expected = [spec.to_json() for spec in info.modalities]
    received = [spec.to_json() for spec in teacher.modalities]
    if expected != received:
        raise RunError(
            f"--pretrained_dir {pretrained_dir!r} was trained on modalities {received}, but the "
            f"dataset has {expected}"
        )
    return teacher


def teacher_embeddings(embedder, examples, modalities, batching):
    """The frozen teacher's embeddings of every example with all its modalities, computed once.

    Returns:
        `(utterance ids, float32 array (n, embedding_dim))`.
    """
    full = modalities_lib.full_condition(modalities)
    dataset = pipeline.make_evaluation_dataset(examples, modalities, full, batching)
    embed = tf.function(
        lambda inputs: embedder(inputs, training=False), input_signature=[model_input_signature(modalities)]
    )
    ids, values = [], []
    for inputs, _, utterance_id in dataset:
        values.append(embed(inputs).numpy())
        ids.extend(utterance_id.numpy().astype(str).tolist())
    return ids, np.concatenate(values).astype(np.float32)


def _compiled_trainer(config: TrainConfig, info, teacher, normalization, absent_modalities=False) -> keras.Model:
    """The trainer of the configured model (MMIN when a teacher is given), compiled.

    `absent_modalities`: the training utterances may lack modalities (MMIN masks the imagination
    targets they lack)."""
    if config.model.kind is ModelKind.MCTN:
        served = construction.build_mctn(
            info.modalities, info.num_classes, config.matched_condition, config.model, config.mctn, normalization)
        trainer = construction.build_mctn_trainer(
            served, config.model, config.mctn, config.losses.classification_weight, config.optimization.clip_norm)
    elif teacher is None:
        served = construction.build_utterance_fusion(
            info.modalities, info.num_classes, config.model, normalization
        )
        trainer = ClassifierTrainer(served, clip_norm=config.optimization.clip_norm)
    else:
        trainer = construction.build_mmin_trainer(
            teacher, info.num_classes, config.model, config.losses,
            config.optimization.clip_norm, config.finetune_encoders, absent_modalities,
        )
    optimization = config.optimization
    if optimization.weight_decay == 0:
        optimizer = keras.optimizers.Adam(
            optimization.learning_rate, beta_1=optimization.beta_1, beta_2=0.999, epsilon=optimization.epsilon)
    else:
        optimizer = keras.optimizers.AdamW(
            optimization.learning_rate, weight_decay=optimization.weight_decay, beta_1=optimization.beta_1,
            epsilon=optimization.epsilon,
        )
    trainer.compile(optimizer=optimizer, jit_compile="auto" if config.jit_compile is None else config.jit_compile)
    return trainer


def _training_dataset(config: TrainConfig, examples, modalities, conditions, batching, teacher, sample_one_condition):
    """One epoch of training batches; for MMIN they carry the frozen teacher's embeddings, computed once.

    An utterance lacking modalities trains under the conditions within what it has (MMIN: the
    imagination targets of its missing modalities must exist) or with its absent modalities
    missing (the classifiers); see `pipeline.make_training_dataset`."""
    extra_keys = ()
    if teacher is not None:
        ids, embeddings = teacher_embeddings(teacher.embedder, examples, modalities, batching)
        examples = pipeline.attach_per_utterance(examples, pipeline.TEACHER_EMBEDDING, ids, embeddings).cache()
        extra_keys = (pipeline.TEACHER_EMBEDDING,)
    return pipeline.make_training_dataset(
        examples, modalities, conditions, batching, sample_one_condition=sample_one_condition,
        seed=config.seed, extra_keys=extra_keys, conditions_within_presence=config.model.kind.is_mmin,
        group_conditions=groups_conditions(config),
    )


def groups_conditions(config: TrainConfig) -> bool:
    """MMIN in the paper's regime (`--condition_mode=all`) trains each utterance's six conditions
    together, encoding the utterance once (`MMINTrainer.compute_grouped_losses`)."""
    return config.model.kind.is_mmin and config.resolved_condition_mode is pipeline.ConditionMode.ALL


# Keras BackupAndRestore's files (`double_checkpoint=True` keeps each one's previous copy as `.bkp`).
_BACKUP_FILES = ("latest.weights.h5", "training_metadata.json")


class _UnusableBackup(Exception):
    """Neither the backup nor the one before it loads: the run was killed while writing its first."""


def _restore_backup(trainer: keras.Model, backup: keras.callbacks.BackupAndRestore, backup_dir: str) -> None:
    """Restores `backup`'s last state (weights, optimizer, random states) into `trainer` now, so
    that the batches it had trained (`trainer.optimizer.iterations`, 0 without a backup) are
    known and the data stream can continue where the interrupted run stopped; `fit` restores the
    same state again as it begins.

    Read here, not by the stream when `fit` first draws from it: in a compiled step the
    optimizer's counter is incremented concurrently with the fetch of the step's batch, so such a
    read sees 0 or 1 at random (measured: it usually saw 1 in a fresh run).

    A torn backup file (a kill while it was written) falls back to the previous backup (`.bkp`):
    Keras does so for the weights file only, so a torn `training_metadata.json` is handled here.
    With no loadable backup at all, `_UnusableBackup` is raised.
    """
    backup.set_model(trainer)
    try:
        backup.on_train_begin()
    except (OSError, ValueError) as error:  # h5 errors are OSErrors, torn JSON a ValueError
        previous = [os.path.join(backup_dir, name) for name in _BACKUP_FILES]
        if not all(os.path.exists(path + ".bkp") for path in previous):
            raise _UnusableBackup(f"{backup_dir}: {error}") from error
        logging.warning("%s: the last backup does not load (%s); resuming from the one before it", backup_dir, error)
        for path in previous:
            shutil.copyfile(path + ".bkp", path)
        try:
            backup.on_train_begin()
        except (OSError, ValueError) as second:
            raise _UnusableBackup(f"{backup_dir}: {error}; its previous backup: {second}") from second


def _repair_torn_backup(backup_dir: str) -> None:
    """Makes `backup_dir` loadable without loading it: a torn weights or metadata file (a kill
    while it was written) is replaced, with its partner, by the previous backup (`.bkp`).
    Without a loadable one a `RunError` says what to delete (a distributed run cannot start
    over by itself: its workers would no longer meet at the same collectives)."""
    paths = [os.path.join(backup_dir, name) for name in _BACKUP_FILES]
    if not os.path.exists(paths[0]):
        return

    def loadable(weights, metadata):
        try:
            with h5py.File(weights, "r"):
                pass
            with open(metadata) as f:
                json.load(f)
            return True
        except (OSError, ValueError):  # h5 errors are OSErrors, torn JSON a ValueError
            return False

    if loadable(*paths):
        return
    if all(os.path.exists(path + ".bkp") for path in paths) and loadable(*(path + ".bkp" for path in paths)):
        logging.warning("%s: the last backup does not load; resuming from the one before it", backup_dir)
        for path in paths:
            shutil.copyfile(path + ".bkp", path)
        return
    raise RunError(f"{backup_dir}: no backup loads (killed while the first was written); delete it and rerun")


def run_training(config: TrainConfig, extra_callbacks: Sequence[keras.callbacks.Callback] = (),
                 strategy: tf.distribute.Strategy | None = None) -> dict:
    """Trains (or resumes, or skips when complete) one run; returns its test metrics.

    `extra_callbacks` run after the built-in ones (validation, TensorBoard, backup) in the
    trained model's `fit` (not in the teacher's).

    `strategy` (`mmin_tf.distribution.make_strategy`; default: one device) trains the teacher
    and the model under a `tf.distribute` strategy, with the same global batch, learning rate
    and metrics. Every worker of a multi-worker strategy calls this with the same `config` (one
    `output_dir` all of them see); the chief alone writes, and every worker returns the test
    metrics the chief wrote.
    """
    strategy = strategy or tf.distribute.get_strategy()
    chief = distribution.is_chief(strategy)
    metrics_path = os.path.join(config.output_dir, METRICS)
    if os.path.exists(metrics_path):
        logging.info("%s is complete; delete it to train again", config.output_dir)
        with open(metrics_path) as f:
            return json.load(f)
    info = format_lib.load_info(config.data.data_dir)
    if config.data.fold not in info.fold_names:
        raise RunError(f"Fold {config.data.fold!r} is not in {config.data.data_dir!r}; folds: {list(info.fold_names)}")
    if config.model.kind is ModelKind.MCTN and modalities_lib.parse_condition(
            config.matched_condition, info.modalities).is_full:
        raise RunError(
            f"--model=mctn translates the available modalities into the missing ones; the full condition "
            f"{config.matched_condition!r} has none missing (the paper's Table 5 has no MCTN {{a,v,t}} column)")
    unknown = sorted(set(config.data.normalize) - {spec.name for spec in info.modalities})
    if unknown:
        raise RunError(f"--normalize names modalities {unknown} that the dataset does not have")
    os.makedirs(config.output_dir, exist_ok=True)
    if chief:
        _check_config(config.output_dir, config)
    teacher = None
    if config.model.kind.is_mmin:
        pretrained_dir = config.pretrained_dir
        if pretrained_dir is None:
            teacher_run = teacher_config(config)
            pretrained_dir = teacher_run.output_dir
            run_training(teacher_run, strategy=strategy)
        # Seeded before loading as well: the teacher's dropout generators (unused: it is frozen)
        # draw their seeds as it loads, and they are part of the trainer's saved state.
        seeding.set_seed(config.seed, op_determinism=not config.jit_compile)
        with strategy.scope():
            teacher = load_teacher(pretrained_dir, config, info)
    seeding.set_seed(config.seed, op_determinism=not config.jit_compile)
    try:
        with dtype_policy(config.mixed_precision):
            result = _train_and_test(config, info, teacher, extra_callbacks, strategy)
    except _UnusableBackup as error:
        # Killed while its first backup was written: nothing trained is kept, so it starts over,
        # seeded as any fresh start (the teacher, complete now, is not retrained).
        logging.warning("%s; training %s from the start", error, config.output_dir)
        shutil.rmtree(os.path.join(config.output_dir, "backup"))
        return run_training(config, extra_callbacks, strategy)
    distribution.barrier(strategy)  # the other workers wait until the chief has written metrics.json
    if not chief:
        with open(metrics_path) as f:
            return json.load(f)
    return result


@contextlib.contextmanager
def dtype_policy(mixed_precision: bool):
    """Keras's global dtype policy for the models built inside (`mixed_bfloat16` or `float32`);
    the caller's policy is back afterwards, so one run's setting never leaks into the next.
    Training runs inside it; so does any other code that builds a model to train like it."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if mixed_precision else "float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _train_and_test(
    config: TrainConfig,
    info: format_lib.DatasetInfo,
    teacher: keras.Model | None,
    extra_callbacks: Sequence[keras.callbacks.Callback],
    strategy: tf.distribute.Strategy,
) -> dict | None:
    """The rest of `run_training` once the seed is set and, for MMIN, the frozen teacher (an
    `UtteranceFusion`) loaded: trains, then writes and returns the test metrics (the chief; the
    other workers of a multi-worker strategy write nothing and return None)."""
    chief = distribution.is_chief(strategy)
    modalities = info.modalities
    splits = {
        split: pipeline.read_fold_split(config.data.data_dir, info, config.data.fold, split).cache()
        for split in format_lib.SPLITS
    }
    unknown = sorted({name for name, _ in config.train_missing_rates} - {spec.name for spec in modalities})
    if unknown:
        raise RunError(f"--train_missing_rate names modalities {unknown} that the dataset does not have")
    if config.train_missing_rates:
        splits["train"] = pipeline.drop_modalities(
            splits["train"], modalities, dict(config.train_missing_rates), config.seed).cache()
    train_presence = info.fold_presence[config.data.fold]["train"]
    train_size = sum(info.fold_counts[config.data.fold]["train"].values())
    absent_modalities = bool(config.train_missing_rates) or any(count < train_size for count in train_presence.values())
    if teacher is not None:
        normalization = teacher.embedder.normalization
    else:
        normalization = pipeline.compute_normalization_statistics(
            splits["train"], modalities, config.data.normalize
        ).to_json()
    if chief:
        write_json(os.path.join(config.output_dir, NORMALIZATION), normalization)
        write_json(os.path.join(config.output_dir, LABELS), list(info.label_names))
        if info.extraction is not None:
            write_json(os.path.join(config.output_dir, EXTRACTION), {
                "extraction": dict(info.extraction), "modalities": [spec.to_json() for spec in modalities]})

    with strategy.scope():
        trainer = _compiled_trainer(config, info, teacher, normalization, absent_modalities)
    matched = (
        modalities_lib.parse_condition(config.matched_condition, modalities) if config.matched_condition else None
    )
    conditions = pipeline.training_conditions(config.resolved_condition_mode, modalities, matched)
    batching = batching_for(info, config, fixed_shapes=trainer.jit_compile)
    sample_one_condition = config.resolved_condition_mode is pipeline.ConditionMode.RANDOM
    train_dataset = _training_dataset(
        config, splits["train"], modalities, conditions, batching, teacher, sample_one_condition)
    # Counted, not taken from the dataset's info: a wrong count would shift every epoch's boundary.
    if groups_conditions(config):  # one element per utterance, with all its conditions
        elements = pipeline.count_training_elements(splits["train"], modalities, conditions, sample_one_condition=True)
        steps_per_epoch = math.ceil(elements / pipeline.grouped_batching(batching, len(conditions)).batch_size)
    else:
        elements = pipeline.count_training_elements(
            splits["train"], modalities, conditions, sample_one_condition=sample_one_condition,
            conditions_within_presence=config.model.kind.is_mmin)
        steps_per_epoch = math.ceil(elements / batching.batch_size)
    validation = {
        condition.name: pipeline.make_evaluation_dataset(splits["validation"], modalities, condition, batching)
        for condition in evaluated_conditions(config, modalities)
    }

    with strategy.scope():
        trainer(next(iter(train_dataset))[0])  # build eagerly before any restore
        if distribution.is_distributed(strategy):
            trainer.optimizer.build(trainer.trainable_variables)  # `fit` would build it in its first step
    # The chief writes into the run directory. Every other worker of a multi-worker strategy
    # runs the same callbacks (saving reads variables through collectives, which every worker
    # must join) into a directory of its own, deleted afterwards: the way TensorFlow's
    # multi-worker guide has non-chief workers save.
    write_dir = config.output_dir if chief else tempfile.mkdtemp(prefix="mmin_tf_worker_")
    try:
        _fit(config, trainer, strategy, train_dataset, batching, steps_per_epoch, validation,
             [c.name for c in conditions], info, write_dir, extra_callbacks)
    finally:
        if not chief:
            shutil.rmtree(write_dir, ignore_errors=True)
    if not chief:
        return None
    best_path = os.path.join(config.output_dir, BEST_MODEL)

    result = write_test_metrics(
        keras.saving.load_model(best_path), config, info, splits["test"], batching,
        best_epoch(config.output_dir), config.output_dir,
    )
    shutil.rmtree(os.path.join(config.output_dir, "backup"), ignore_errors=True)
    logging.info("Test metrics of %s: %s", config.output_dir, json.dumps(result["conditions"]))
    return result


def _fit(config, trainer, strategy, train_dataset, batching, steps_per_epoch, validation, selection_conditions,
         info, write_dir, extra_callbacks) -> None:
    """Restores the run's backup, if any, and trains to the last epoch, writing the callbacks'
    files (best model, TensorBoard, backups) into `write_dir`."""
    optimization = config.optimization
    chief = write_dir == config.output_dir
    backup_dir = os.path.join(config.output_dir, "backup")
    # Two backups kept: a kill while one is written (a torn weights file) falls back to the other.
    backup = keras.callbacks.BackupAndRestore(
        os.path.join(write_dir, "backup"), double_checkpoint=True, delete_checkpoint=False)
    if not distribution.is_distributed(strategy):
        _restore_backup(trainer, backup, backup_dir)
    else:
        # Loading reads variables through collectives, so every worker loads at once, the
        # chief's backup, once the chief has made it loadable; the other workers' callbacks start
        # from copies of it and of the best epoch so far (their validation then decides alike).
        if chief:
            _repair_torn_backup(backup_dir)
        distribution.barrier(strategy)
        if not chief:
            if os.path.isdir(backup_dir):
                shutil.copytree(backup_dir, os.path.join(write_dir, "backup"))
            if os.path.exists(os.path.join(config.output_dir, BEST_STATE)):
                shutil.copyfile(os.path.join(config.output_dir, BEST_STATE), os.path.join(write_dir, BEST_STATE))
        backup.set_model(trainer)
        backup.on_train_begin()
    trained_batches = int(trainer.optimizer.iterations.numpy())
    train_dataset = pipeline.repeat_epochs(train_dataset, batching, trained_batches)
    best_path = os.path.join(write_dir, BEST_MODEL)
    if chief and not os.path.exists(backup_dir):  # a fresh start: forget any earlier run's best epoch
        for stale in (best_path, os.path.join(write_dir, BEST_STATE)):
            if os.path.exists(stale):
                os.remove(stale)
    callbacks = [
        EpochTimer(),
        keras.callbacks.LearningRateScheduler(lambda epoch, lr: optimization.learning_rate_at(epoch)),
        ConditionValidation(
            trainer.model, validation, selection_conditions,
            config.selection_metric.value, info.modalities, info.num_classes,
            best_path, os.path.join(write_dir, BEST_STATE),
        ),
        keras.callbacks.TensorBoard(
            os.path.join(write_dir, "logs"), write_graph=False, profile_batch=config.profile_batch or 0,
        ),
        backup,
        *extra_callbacks,
    ]
    if distribution.is_distributed(strategy):
        with strategy.scope():
            distributed_fit.fit(
                trainer, strategy, train_dataset, epochs=optimization.total_epochs, steps_per_epoch=steps_per_epoch,
                initial_epoch=trained_batches // steps_per_epoch, callbacks=callbacks)
    else:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*shuffle=True. was passed")
            trainer.fit(train_dataset, epochs=optimization.total_epochs, steps_per_epoch=steps_per_epoch,
                        callbacks=callbacks, verbose=2)
