"""The XLA-compiled training step on CPU gives the losses of the uncompiled one."""

import dataclasses

import keras
import numpy as np
import pytest

from mmin_tf import configs, seeding
from mmin_tf.data.pipeline import AVAILABILITY
from mmin_tf.models import construction
from mmin_tf.models.trainer import ClassifierTrainer
from tests import tiny_runs

MODALITIES = tiny_runs.MODALITIES
CONDITIONS = np.asarray([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], bool)


def _batch(rows=6, time=6):
    """Fixed shapes (what an XLA step is fed: `batching_for(..., fixed_shapes=True)`)."""
    rng = np.random.default_rng(0)
    inputs = {}
    for spec in MODALITIES:
        inputs[spec.name] = rng.normal(size=(rows, time, spec.feature_dim)).astype(np.float32)
        inputs[spec.length_key] = rng.integers(2, time + 1, size=rows).astype(np.int32)
    inputs[AVAILABILITY] = CONDITIONS[np.arange(rows) % len(CONDITIONS)]
    return inputs, rng.integers(0, 4, size=rows).astype(np.int32)


def _trainer(kind):
    keras.utils.set_random_seed(0)
    config = dataclasses.replace(tiny_runs.tiny_config("d", "o").model, kind=configs.ModelKind.BASELINE,
                                 text_cnn_dropout=0.0, classifier_dropout=0.0)
    fusion = construction.build_utterance_fusion(MODALITIES, 4, config)
    if kind == "baseline":
        return ClassifierTrainer(fusion, clip_norm=1.0)
    return construction.build_mmin_trainer(
        fusion, 4, dataclasses.replace(config, kind=configs.ModelKind.MMIN), configs.LossConfig(), 1.0, True)


def _losses(kind, jit_compile, steps=3):
    trainer = _trainer(kind)
    inputs, labels = _batch()
    trainer({key: value for key, value in inputs.items() if key != AVAILABILITY})
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit_compile)
    assert trainer.jit_compile is jit_compile  # Keras silently drops XLA while op determinism is on
    return [trainer.train_on_batch(inputs, labels, return_dict=True) for _ in range(steps)]


@pytest.mark.parametrize("kind", ["baseline", "mmin"])
def test_the_xla_step_gives_the_uncompiled_losses(kind):
    seeding.set_seed(0, op_determinism=False)  # as `run_training` with --jit_compile=true
    try:
        compiled = _losses(kind, True)
        plain = _losses(kind, False)
    finally:
        seeding.set_seed(0)
    assert compiled[0]["loss"] != compiled[-1]["loss"]  # the steps trained
    for step_compiled, step_plain in zip(compiled, plain):
        assert set(step_compiled) == set(step_plain)
        for name, value in step_plain.items():
            np.testing.assert_allclose(step_compiled[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
