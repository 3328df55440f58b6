"""Seeding a process: one seed fixes a run's weights, data order, dropout and augmentation."""

from __future__ import annotations

import keras
import tensorflow as tf


def set_seed(seed: int, op_determinism: bool = True) -> None:
    """Seeds Python, NumPy, TensorFlow and Keras; makes TF ops deterministic (or not: see below).

    Keras refuses XLA (`jit_compile=True` quietly becomes False) while op determinism is on, so
    an XLA-compiled run passes `op_determinism=False` (on CPU two XLA runs of a tiny MMIN with
    the same seed still matched; GPU kernels may not). The setting is process-wide; each call
    sets it.
    """
    keras.utils.set_random_seed(seed)  # seeds `random`, NumPy and TensorFlow
    if op_determinism:
        tf.config.experimental.enable_op_determinism()
    else:
        # No public counterpart of `enable_op_determinism`; Keras reads this same module's flag.
        from tensorflow.python.framework import config as framework_config

        framework_config.disable_op_determinism()
