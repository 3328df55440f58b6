"""Every setting of feature extraction, recorded in `dataset.json` (`DatasetInfo.extraction`).

A dataset made from media records exactly how its features were made: the three extractors'
settings, what happens when no face is found, and which models encoded text and faces (their
weights file's name and SHA-256), so that training runs, exports and the served model's own
extraction can check that they use the same ones.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import os
from typing import Mapping, Optional

from mmin_tf.features.acoustic import AcousticSettings
from mmin_tf.features.text import TextSettings
from mmin_tf.features.visual import VisualSettings

AUDIO_MODALITY = "acoustic"
TEXT_MODALITY = "text"
VIDEO_MODALITY = "visual"


class NoFace(enum.Enum):
    """What an utterance whose video has no face in any sampled frame gets."""

    ABSENT = "absent"  # no visual modality: the dataset records it as absent for the utterance
    ZEROS = "zeros"  # one all-zero frame, as the original
    ERROR = "error"  # a bad-media error (the utterance fails, or is skipped with --skip_bad_media)


@dataclasses.dataclass(frozen=True)
class ModelFile:
    """A model an extractor loads, identified by its weights file."""

    name: str  # the file's base name
    sha256: str

    @classmethod
    def of(cls, path: str) -> "ModelFile":
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return cls(os.path.basename(path), digest.hexdigest())

    def to_json(self) -> dict:
        return {"name": self.name, "sha256": self.sha256}

    @classmethod
    def from_json(cls, config: dict) -> "ModelFile":
        return cls(config["name"], config["sha256"])


@dataclasses.dataclass(frozen=True)
class ExtractionSettings:
    """How a dataset's features were extracted from media.

    Attributes:
        acoustic, text, visual: the extractors' settings.
        no_face: what an utterance without a face gets.
        models: modality name -> the model that encoded it (text: the BERT weights, visual: the
            face model); filled in by the pipeline from the files it loads.
    """

    acoustic: AcousticSettings = AcousticSettings()
    text: TextSettings = TextSettings()
    visual: VisualSettings = VisualSettings()
    no_face: NoFace = NoFace.ABSENT
    models: Mapping[str, ModelFile] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.no_face, NoFace):
            raise TypeError(f"`no_face` must be a NoFace. Received: {self.no_face!r}")

    def to_json(self) -> dict:
        return {
            "acoustic": self.acoustic.to_json(),
            "text": self.text.to_json(),
            "visual": self.visual.to_json(),
            "no_face": self.no_face.value,
            "models": {name: model.to_json() for name, model in sorted(self.models.items())},
        }

    @classmethod
    def from_json(cls, config: Mapping) -> "ExtractionSettings":
        return cls(
            acoustic=AcousticSettings.from_json(config["acoustic"]),
            text=TextSettings.from_json(config["text"]),
            visual=VisualSettings.from_json(config["visual"]),
            no_face=NoFace(config["no_face"]),
            models={name: ModelFile.from_json(model) for name, model in config.get("models", {}).items()},
        )


def check_model_file(settings: ExtractionSettings, modality: str, path: str) -> Optional[ModelFile]:
    """The `ModelFile` of `path`; a `ValueError` when `settings` recorded another model for `modality`."""
    model = ModelFile.of(path)
    recorded = settings.models.get(modality)
    if recorded is not None and recorded.sha256 != model.sha256:
        raise ValueError(
            f"The {modality} model {path!r} (sha256 {model.sha256[:12]}...) is not the one the features were "
            f"extracted with ({recorded.name}, sha256 {recorded.sha256[:12]}...)")
    return model
