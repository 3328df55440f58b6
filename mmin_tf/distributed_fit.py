"""Keras `fit` for a trainer under a `tf.distribute` strategy: the same `train_step` and callbacks
in a loop of our own.

`fit` itself fails under `MultiWorkerMirroredStrategy` in Keras 3.15 (keras-team/keras#20329: its
symbolic build reduces the first batch across workers, and it reduces the scalar logs along an
axis they do not have), and under any strategy that symbolic build consumes a training batch, so
the data would no longer be the batches a one-device run sees. This loop runs
`strategy.run(trainer.train_step, ...)` over the distributed dataset, one global batch per step,
and calls the callbacks where `fit` calls them.
"""

from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf


def _epoch_logs(trainer: keras.Model) -> dict:
    """The trainer's metrics over the epoch so far, every replica's (and worker's) share included."""
    return {metric.name: float(metric.result()) for metric in trainer.metrics}


def fit(
    trainer: keras.Model,
    strategy: tf.distribute.Strategy,
    dataset: tf.data.Dataset,
    *,
    epochs: int,
    steps_per_epoch: int,
    initial_epoch: int,
    callbacks: Sequence[keras.callbacks.Callback],
    verbose: int = 2,
) -> keras.callbacks.History:
    """Trains `trainer` (built and compiled under `strategy.scope()`) from `initial_epoch` to `epochs`.

    Args:
        dataset: global batches without end (`pipeline.repeat_epochs`), positioned after the
            batches already trained; each is split among the replicas (and, across workers, by
            data: every worker builds the same batches and takes its replicas' rows).
        epochs, steps_per_epoch, initial_epoch: as in `fit`.
        callbacks: as in `fit`; each process passes its own (only the chief's write).
        verbose: as in `fit` (2: a line per epoch).

    Returns:
        The `History` of the epochs trained.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    iterator = iter(strategy.experimental_distribute_dataset(dataset.with_options(options)))

    @tf.function
    def train_step():
        strategy.run(trainer.train_step, args=(next(iterator),))

    history = keras.callbacks.History()
    callback_list = keras.callbacks.CallbackList(
        [*callbacks, history], add_progbar=verbose != 0, verbose=verbose, epochs=epochs,
        steps=steps_per_epoch, model=trainer,
    )
    trainer.stop_training = False
    callback_list.on_train_begin()
    logs = {}
    for epoch in range(initial_epoch, epochs):
        trainer.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        for step in range(steps_per_epoch):
            callback_list.on_train_batch_begin(step)
            train_step()
            callback_list.on_train_batch_end(step)
        logs = _epoch_logs(trainer)
        callback_list.on_epoch_end(epoch, logs)
        if trainer.stop_training:
            break
    callback_list.on_train_end(logs)
    return history
