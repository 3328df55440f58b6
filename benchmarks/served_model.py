"""The served MMIN of the serving benchmarks, and the latency of repeated calls.

An MMIN built as training builds it, with random, untrained weights and identity normalization
statistics: the served graph a trained export has, only the weights differ, which does not change
the cost. This module defines no flags, so any benchmark script can import it (the scripts' own
flags would clash).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mmin_tf.configs import LossConfig, ModelConfig, ModelKind
from mmin_tf.models import construction


@dataclasses.dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of repeated calls of one signature on one kind of request."""

    signature: str
    condition: str
    batch: int
    seconds: tuple[float, ...]

    @property
    def p50_ms(self) -> float:
        return 1000 * float(np.percentile(self.seconds, 50))

    @property
    def p99_ms(self) -> float:
        return 1000 * float(np.percentile(self.seconds, 99))

    @property
    def mean_ms(self) -> float:
        return 1000 * float(np.mean(self.seconds))

    @property
    def utterances_per_second(self) -> float:
        return self.batch * len(self.seconds) / float(np.sum(self.seconds))

    def line(self) -> str:
        head = f"serving signature={self.signature} condition={self.condition} batch={self.batch}"
        if self.batch == 1:
            return f"{head} p50_ms={self.p50_ms:.2f} p99_ms={self.p99_ms:.2f} mean_ms={self.mean_ms:.2f}"
        return (f"{head} utterances_per_second={self.utterances_per_second:.1f} "
                f"p50_ms_per_batch={self.p50_ms:.1f}")


def build_random_mmin(modalities, model_config: ModelConfig, num_classes: int):
    """An untrained MMIN (teacher -> student, as training builds it), identity normalization."""
    normalization = {
        spec.name: {"mean": [0.0] * spec.feature_dim, "std": [1.0] * spec.feature_dim} for spec in modalities
    }
    teacher_config = dataclasses.replace(model_config, kind=ModelKind.BASELINE)
    mmin_config = dataclasses.replace(model_config, kind=ModelKind.MMIN)
    teacher = construction.build_utterance_fusion(modalities, num_classes, teacher_config, normalization)
    return construction.build_mmin_trainer(teacher, num_classes, mmin_config, LossConfig(), 1.0, True).model
