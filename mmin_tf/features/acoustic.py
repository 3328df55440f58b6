"""Acoustic features: openSMILE ComParE low-level descriptors and their deltas (paper §4.2).

The original code runs `SMILExtract -C ComParE_2016.conf` and keeps the 65 low-level descriptors
(LLDs) and their 65 deltas of each 10 ms frame, then `scipy.signal.resample_poly(..., down=10)`
along time: 130 values every 100 ms. The `opensmile` package computes the LLDs and the deltas
as two outputs whose rows do not line up one to one (the deltas have extra end rows with repeated
start times), so they are joined on their frame start (rounded to the 10 ms hop, duplicates
dropped). The paper names the `IS13_ComParE` configuration instead; it has the same 65 LLD
names, and 5 of them differ numerically: `AcousticFeatureSet` chooses.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib.util
import os
import platform
import sys

import numpy as np
from scipy import signal as scipy_signal

from mmin_tf.features.media import MediaError

HOP_SECONDS = 0.01  # openSMILE's ComParE frame step
WINDOW_SECONDS = 0.06  # and its analysis window: shorter audio has no frame
FULL_SCALE = 32767 / 32768  # the largest sample openSMILE's 16-bit conversion keeps


class AcousticFeatureSet(enum.Enum):
    """The openSMILE configuration."""

    COMPARE_2016 = "ComParE_2016"  # the original code's SMILExtract configuration
    IS13_COMPARE = "IS13_ComParE"  # the paper's §4.2 name


@dataclasses.dataclass(frozen=True)
class AcousticSettings:
    """How acoustic features are extracted (recorded in `dataset.json`).

    Attributes:
        feature_set: the openSMILE configuration.
        sample_rate: audio is resampled to this rate before extraction (16 kHz as IEMOCAP).
        downsample: frames are resampled by 1/downsample along time with a polyphase filter:
            10 (the original) gives one frame per 100 ms, 1 keeps openSMILE's 10 ms frames.
    """

    feature_set: AcousticFeatureSet = AcousticFeatureSet.COMPARE_2016
    sample_rate: int = 16000
    downsample: int = 10

    def __post_init__(self):
        if not isinstance(self.feature_set, AcousticFeatureSet):
            raise TypeError(f"`feature_set` must be an AcousticFeatureSet. Received: {self.feature_set!r}")
        if self.sample_rate < 8000:
            raise ValueError(f"`sample_rate` must be >= 8000. Received: {self.sample_rate}")
        if self.downsample < 1:
            raise ValueError(f"`downsample` must be >= 1. Received: {self.downsample}")

    @property
    def frame_seconds(self) -> float:
        """Seconds between output frames (0.1 by default)."""
        return HOP_SECONDS * self.downsample

    def to_json(self) -> dict:
        return {"feature_set": self.feature_set.value, "sample_rate": self.sample_rate, "downsample": self.downsample}

    @classmethod
    def from_json(cls, config: dict) -> "AcousticSettings":
        return cls(AcousticFeatureSet(config["feature_set"]), int(config["sample_rate"]), int(config["downsample"]))


def import_opensmile():
    """Imports `opensmile` with its native library bound to its own symbols.

    libSMILEapi exports Ooura's FFT routines (`rdft`, `cdft`, ...) under the same names as the copy
    TensorFlow loads globally; loaded after TensorFlow, openSMILE's calls bind to TensorFlow's
    variant and corrupt the heap (`malloc(): invalid size`, measured with TF 2.21 and opensmile
    2.6.0). Loading the library first with `RTLD_DEEPBIND` (Linux) makes it use its own copy,
    whatever was imported before: the features equal those of a process without TensorFlow.
    """
    if "opensmile" not in sys.modules and hasattr(os, "RTLD_DEEPBIND"):
        import ctypes

        spec = importlib.util.find_spec("opensmile")
        if spec is not None and spec.submodule_search_locations:
            root = list(spec.submodule_search_locations)[0]
            library = os.path.join(
                root, "core", "bin", f"manylinux_2_17_{platform.machine().lower()}", "libSMILEapi.so")
            if os.path.isfile(library):  # the path opensmile.core.lib loads
                ctypes.CDLL(library, mode=os.RTLD_LAZY | os.RTLD_LOCAL | os.RTLD_DEEPBIND)
    import opensmile

    return opensmile


class AcousticExtractor:
    """openSMILE LLDs + deltas of a mono signal.

    Args:
        settings: `AcousticSettings`.
    """

    feature_dim = 130

    def __init__(self, settings: AcousticSettings = AcousticSettings()):
        opensmile = import_opensmile()
        self.settings = settings
        feature_set = getattr(opensmile.FeatureSet, {
            AcousticFeatureSet.COMPARE_2016: "ComParE_2016", AcousticFeatureSet.IS13_COMPARE: "IS13"}[settings.feature_set])
        self._descriptors = opensmile.Smile(feature_set, opensmile.FeatureLevel.LowLevelDescriptors)
        self._deltas = opensmile.Smile(feature_set, opensmile.FeatureLevel.LowLevelDescriptors_Deltas)

    def extract(self, samples: np.ndarray, name: str = "audio") -> np.ndarray:
        """`(samples,)` float at `settings.sample_rate` -> float32 `(frames, 130)`.

        Raises:
            MediaError: naming `name`, when the signal is too short for one frame or a feature is
                not finite.
        """
        rate = self.settings.sample_rate
        if len(samples) < WINDOW_SECONDS * rate:
            raise MediaError(
                f"{name}: {len(samples) / rate:.3f} s of audio is too short for one openSMILE frame "
                f"({WINDOW_SECONDS * 1000:.0f} ms)")
        # openSMILE reads the signal as 16-bit samples (it multiplies by 32768 and casts, which
        # wraps values at or beyond full scale around): clip to the int16 range first.
        samples = np.clip(np.asarray(samples, np.float32), -1.0, FULL_SCALE)
        descriptors = _by_frame(self._descriptors.process_signal(samples, rate))
        deltas = _by_frame(self._deltas.process_signal(samples, rate))
        frames = sorted(set(descriptors) & set(deltas))
        features = np.stack([np.concatenate([descriptors[frame], deltas[frame]]) for frame in frames])  # (T, 130)
        if self.settings.downsample > 1:
            features = scipy_signal.resample_poly(features, up=1, down=self.settings.downsample, axis=0)
        features = features.astype(np.float32)
        if not np.all(np.isfinite(features)):
            raise MediaError(f"{name}: openSMILE gave NaN or Inf features")
        return features


def _by_frame(table) -> dict[int, np.ndarray]:
    """openSMILE's output rows keyed by their start in hops; the first row of a repeated start wins."""
    rows = {}
    starts = table.index.get_level_values("start").total_seconds()
    values = table.to_numpy(np.float64)
    for start, row in zip(starts, values):
        rows.setdefault(int(round(start / HOP_SECONDS)), row)
    return rows
