"""Face detection in video frames: OpenCV's frontal-face Haar cascade, the largest face cropped.

`opencv-python-headless` (< 5) ships the cascade file, so detection needs no download. The face
is searched inside an optional region of the frame (IEMOCAP shows both actors side by side), and
the largest detection is cropped and resized to the face model's input.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from mmin_tf.data.media_manifest import FaceRegion

CASCADE_FILE = "haarcascade_frontalface_default.xml"


@dataclasses.dataclass(frozen=True)
class FaceDetectionSettings:
    """OpenCV `CascadeClassifier.detectMultiScale` parameters.

    Attributes:
        scale_factor: image pyramid step (OpenCV's default 1.1).
        min_neighbors: overlapping detections a face needs. 5, not OpenCV's default 3: with 3 the
            cascade also "finds" a larger non-face next to the face in scikit-image's astronaut
            (256 x 256), which the largest-face rule would then crop; 4 to 6 find only the face.
        min_face_size: smallest face searched, in pixels (width and height).
        face_size: side of the square crop given to the face model.
    """

    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_face_size: int = 30
    face_size: int = 64

    def __post_init__(self):
        if self.scale_factor <= 1.0:
            raise ValueError(f"`scale_factor` must be > 1. Received: {self.scale_factor}")
        if self.min_neighbors < 0 or self.min_face_size < 1 or self.face_size < 1:
            raise ValueError(
                "`min_neighbors` must be >= 0, `min_face_size` and `face_size` >= 1. Received: "
                f"{self.min_neighbors}, {self.min_face_size}, {self.face_size}")

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, config: dict) -> "FaceDetectionSettings":
        return cls(**config)


class FaceDetector:
    """Finds the largest frontal face of a grayscale frame and crops it.

    Args:
        settings: `FaceDetectionSettings`.
    """

    def __init__(self, settings: FaceDetectionSettings = FaceDetectionSettings()):
        import cv2

        self.settings = settings
        self._cv2 = cv2
        self._cascade = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE_FILE)
        if self._cascade.empty():
            raise FileNotFoundError(f"OpenCV's {CASCADE_FILE} did not load from {cv2.data.haarcascades}")

    def largest_face(self, frame: np.ndarray, region: Optional[FaceRegion] = None) -> Optional[np.ndarray]:
        """The largest face in `frame` (grayscale uint8 `(height, width)`), inside `region`.

        Returns:
            uint8 `(face_size, face_size)`, or None when no face is found.
        """
        if region is not None:
            x0, y0, x1, y1 = region.pixels(frame.shape[1], frame.shape[0])
            frame = frame[y0:y1, x0:x1]
        size = self.settings.min_face_size
        faces = self._cascade.detectMultiScale(
            frame, scaleFactor=self.settings.scale_factor, minNeighbors=self.settings.min_neighbors, minSize=(size, size))
        if len(faces) == 0:
            return None
        x, y, width, height = max(faces, key=lambda face: face[2] * face[3])
        crop = frame[y:y + height, x:x + width]
        side = self.settings.face_size
        return self._cv2.resize(crop, (side, side), interpolation=self._cv2.INTER_AREA)
