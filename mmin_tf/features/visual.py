"""Visual features: Denseface embeddings of the faces in an utterance's video frames (paper §4.2).

Frames of the utterance's span are sampled (`frame_rate`), the largest face of each is found
(`faces.FaceDetector`, inside the record's face region) and cropped to 64 x 64 grayscale, and the
Denseface model (`mmin_tf.features.denseface`, trained by `python -m mmin_tf.features.train_face_model`)
encodes every face: 342 values per frame with a face. Frames without a face add no frame.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

import numpy as np

from mmin_tf.data.media_manifest import FaceRegion
from mmin_tf.features import media
from mmin_tf.features.faces import FaceDetectionSettings, FaceDetector
from mmin_tf.features.media import MediaError


@dataclasses.dataclass(frozen=True)
class VisualSettings:
    """How visual features are extracted (recorded in `dataset.json`).

    Attributes:
        frame_rate: frames per second sampled from the video; None: every frame (the original
            encoded every face frame of IEMOCAP's 30 fps video).
        detection: face detection and crop settings.
    """

    frame_rate: Optional[float] = None
    detection: FaceDetectionSettings = FaceDetectionSettings()

    def __post_init__(self):
        if self.frame_rate is not None and self.frame_rate <= 0:
            raise ValueError(f"`frame_rate` must be positive or None. Received: {self.frame_rate}")

    def to_json(self) -> dict:
        return {"frame_rate": self.frame_rate, "detection": self.detection.to_json()}

    @classmethod
    def from_json(cls, config: dict) -> "VisualSettings":
        return cls(config["frame_rate"], FaceDetectionSettings.from_json(config["detection"]))


def load_face_model(path: str):
    """The `.keras` face model at `path`; a `FileNotFoundError` naming it when it cannot be loaded."""
    import keras

    import mmin_tf.features.denseface  # noqa: F401  (registers the face model for loading)

    if not os.path.isfile(path):
        raise FileNotFoundError(f"Face model {path!r} does not exist")
    try:
        return keras.saving.load_model(path)
    except (OSError, ValueError, TypeError) as error:
        raise FileNotFoundError(f"Face model {path!r} cannot be loaded: {error}") from None


def face_model_feature_dim(path: str) -> int:
    """Features per face of the face model at `path`."""
    return int(load_face_model(path).feature_dim)


class VisualExtractor:
    """Faces of a video span -> Denseface features.

    Args:
        face_model_path: the `.keras` face model; its `features` output is the embedding.
        settings: `VisualSettings`.
        batch_size: faces encoded together.
    """

    def __init__(self, face_model_path: str, settings: VisualSettings = VisualSettings(), batch_size: int = 64):
        import tensorflow as tf

        self.settings = settings
        self.batch_size = batch_size
        self.detector = FaceDetector(settings.detection)
        self.model = load_face_model(face_model_path)
        side = settings.detection.face_size
        self._features = tf.function(
            lambda faces: self.model(faces, training=False)["features"],
            input_signature=[tf.TensorSpec([None, side, side, 1], tf.float32)],
        )

    @property
    def feature_dim(self) -> int:
        return int(self.model.feature_dim)

    def faces(self, path: str, start=None, end=None, region: Optional[FaceRegion] = None) -> tuple[np.ndarray, int]:
        """The cropped faces of the span's sampled frames, uint8 `(faces, side, side)`, and the number
        of frames sampled."""
        crops, frames = [], 0
        for _, frame in media.read_video_frames(path, self.settings.frame_rate, start, end):
            frames += 1
            face = self.detector.largest_face(frame, region)
            if face is not None:
                crops.append(face)
        side = self.settings.detection.face_size
        return (np.stack(crops) if crops else np.zeros((0, side, side), np.uint8)), frames

    def encode(self, faces: np.ndarray, name: str = "video") -> np.ndarray:
        """uint8 `(faces, side, side)` -> float32 `(faces, feature_dim)`."""
        outputs = [
            self._features(faces[begin:begin + self.batch_size, :, :, None].astype(np.float32)).numpy()
            for begin in range(0, len(faces), self.batch_size)
        ]
        features = np.concatenate(outputs) if outputs else np.zeros((0, self.feature_dim), np.float32)
        if not np.all(np.isfinite(features)):
            raise MediaError(f"{name}: the face model gave NaN or Inf features")
        return features.astype(np.float32)

    def extract(self, path: str, start=None, end=None, region: Optional[FaceRegion] = None) -> np.ndarray:
        """The span's face features, float32 `(frames with a face, feature_dim)`; 0 rows when no
        frame has a face."""
        faces, _ = self.faces(path, start, end, region)
        return self.encode(faces, f"video {path}")
