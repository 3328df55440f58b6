"""The `tf.distribute` strategy a training process runs under, which of its processes writes, and
where they wait for each other.

    default       one device (TensorFlow's default strategy): Keras `fit`.
    mirrored      `MirroredStrategy` over this machine's GPUs; without GPUs, over
                  `--logical_cpus` logical CPU devices (for tests and the scaling benchmark).
    multi_worker  `MultiWorkerMirroredStrategy` over the processes named by `TF_CONFIG`; every
                  process runs the same command with its own `TF_CONFIG`, and all see one
                  `--output_dir` (a shared filesystem). The chief (worker 0, or the task of type
                  "chief") alone writes.

A strategy has to be made before TensorFlow runs anything else in the process (the collective
runtime of `multi_worker` and the logical devices of `mirrored` are fixed at initialisation).
"""

from __future__ import annotations

import enum
import json
import os
from typing import Optional

import tensorflow as tf


class StrategyKind(enum.Enum):
    DEFAULT = "default"
    MIRRORED = "mirrored"
    MULTI_WORKER = "multi_worker"


def configure_logical_cpus(count: int) -> None:
    """Splits the CPU into `count` logical devices (`/cpu:0` .. `/cpu:count-1`); call before
    TensorFlow initialises. `count` 0 or 1 leaves the single CPU device."""
    if count < 0:
        raise ValueError(f"`count` must be >= 0. Received: {count}")
    if count <= 1:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as error:
        raise RuntimeError(
            f"{count} logical CPU devices must be configured before TensorFlow initialises ({error})") from error


def _task_from_tf_config(environ) -> tuple[str, int, int]:
    """`(task type, task index, number of workers)` from `TF_CONFIG`, with a clear error when it is
    missing or malformed."""
    text = environ.get("TF_CONFIG")
    if not text:
        raise ValueError(
            "--strategy=multi_worker needs TF_CONFIG, e.g. "
            '{"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": {"type": "worker", "index": 0}}')
    try:
        tf_config = json.loads(text)
        cluster, task = tf_config["cluster"], tf_config["task"]
        workers = len(cluster.get("worker", ())) + len(cluster.get("chief", ()))
        return str(task["type"]), int(task["index"]), workers
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"TF_CONFIG is not a cluster and task description ({error!r}): {text!r}") from None


def make_strategy(kind: StrategyKind, logical_cpus: int = 0,
                  collective_timeout_s: Optional[float] = None) -> tf.distribute.Strategy:
    """The strategy of `kind`; see the module docstring.

    Args:
        kind: a `StrategyKind`.
        logical_cpus: for `mirrored` on a machine without GPUs: replicas on that many logical CPU
            devices (configured here; TensorFlow must not have initialised yet).
        collective_timeout_s: `multi_worker`: a collective waiting longer for a peer fails with
            `DeadlineExceededError` instead of waiting on; None: TensorFlow's default (no
            timeout; a peer that dies is still found by the strategy's health check).
    """
    if kind is StrategyKind.DEFAULT:
        if logical_cpus > 1:
            raise ValueError("`logical_cpus` splits the CPU for --strategy=mirrored only")
        return tf.distribute.get_strategy()
    if kind is StrategyKind.MIRRORED:
        configure_logical_cpus(logical_cpus)
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        devices = [device.name for device in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if kind is StrategyKind.MULTI_WORKER:
        if logical_cpus > 1:
            raise ValueError("`logical_cpus` splits the CPU for --strategy=mirrored only")
        _task_from_tf_config(os.environ)
        options = tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=collective_timeout_s) if collective_timeout_s else None
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    raise ValueError(f"Unknown strategy kind {kind!r}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run's files (checkpoints, TensorBoard, metrics)."""
    return bool(strategy.extended.should_checkpoint)


def is_distributed(strategy: tf.distribute.Strategy) -> bool:
    """Whether `strategy` is one `make_strategy` makes for `mirrored` or `multi_worker` (and not
    TensorFlow's one-device default), whatever its number of replicas."""
    return isinstance(strategy, (tf.distribute.MirroredStrategy, tf.distribute.MultiWorkerMirroredStrategy))


def barrier(strategy: tf.distribute.Strategy) -> None:
    """Returns once every replica of `strategy` (every worker) has reached it."""
    if not is_distributed(strategy):
        return

    @tf.function
    def meet():
        return strategy.run(lambda: tf.distribute.get_replica_context().all_reduce("SUM", tf.constant(1.0)))

    meet()
