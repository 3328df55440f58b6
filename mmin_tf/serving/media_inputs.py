"""Raw media -> the served model's inputs, extracted exactly as the model's training data was.

An exported model made from an extracted dataset carries the extraction settings
(`assets.extra/extraction.json`, written by `mmin_tf.export`). `MediaFrontEnd` builds the same
extractors (`mmin_tf.features.extractor.MediaExtractor`, the one code path from media to
features), checks that the BERT preset and face model it is given are the files the training
features were made with (SHA-256), and turns requests holding audio bytes, a transcript and video
bytes -- any of them absent -- into `serving_default` inputs. What a request lacks, and a video
without a face, is a missing modality; the response says which.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from typing import Mapping, Optional, Sequence

import numpy as np

from mmin_tf import modalities as modalities_lib
from mmin_tf.data.media_manifest import FaceRegion, MediaRecord

AUDIO, TRANSCRIPT, VIDEO = "audio", "transcript", "video"
MEDIA_FIELDS = (AUDIO, TRANSCRIPT, VIDEO)
_MODALITY_OF = {AUDIO: "acoustic", TRANSCRIPT: "text", VIDEO: "visual"}


class MediaInputError(ValueError):
    """A request the front end cannot turn into features; the message names the field."""


@dataclasses.dataclass(frozen=True)
class MediaLimits:
    """What a request may hold.

    Attributes:
        max_bytes: the largest audio or video file, in bytes.
        max_seconds: the longest audio or video (the whole file, before any span).
        max_transcript_chars: the longest transcript.
    """

    max_bytes: int = 50 * 2 ** 20
    max_seconds: float = 60.0
    max_transcript_chars: int = 20000

    def __post_init__(self):
        if self.max_bytes < 1 or self.max_seconds <= 0 or self.max_transcript_chars < 1:
            raise ValueError(f"Media limits must be positive. Received: {self}")


@dataclasses.dataclass(frozen=True)
class MediaRequest:
    """One utterance's media, as a caller sends them.

    Attributes:
        audio: a wav or flac file's bytes, or None.
        transcript: the text, or None.
        video: a video file's bytes (any container OpenCV opens), or None.
        start, end: the span in seconds inside the audio and the video (None: all of it).
        face_region: where the face is searched (`left:top:right:bottom` fractions), or None.
    """

    audio: Optional[bytes] = None
    transcript: Optional[str] = None
    video: Optional[bytes] = None
    start: Optional[float] = None
    end: Optional[float] = None
    face_region: Optional[str] = None


def read_extraction(version_dir: str) -> Optional[dict]:
    """The export's recorded extraction (`{"extraction", "modalities"}`), or None."""
    from mmin_tf.export.saved_model import EXTRACTION_FILE

    path = os.path.join(version_dir, EXTRACTION_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


class MediaFrontEnd:
    """Turns media requests into `serving_default` inputs with the training data's extractors.

    Args:
        recorded: the export's `read_extraction(...)`: the dataset's extraction settings and the
            model's modalities.
        bert_preset, face_model: the text and face models; each must be the file the training
            features were extracted with. Without one, requests with that medium are refused.
        limits: `MediaLimits`.

    Raises:
        ValueError: no recorded settings, a model file other than the recorded one, or an
            extractor whose features do not have the model's dims.
    """

    def __init__(self, recorded: Optional[Mapping], bert_preset: Optional[str] = None,
                 face_model: Optional[str] = None, limits: MediaLimits = MediaLimits()):
        from mmin_tf.features import settings as settings_lib
        from mmin_tf.features.extractor import MediaExtractor

        if recorded is None:
            raise ValueError(
                "This model records no feature extraction settings (it was not trained on a dataset made by "
                "python -m mmin_tf.extract or prepare --source=iemocap|msp_improv): raw media cannot be "
                "turned into the features it was trained on")
        settings = settings_lib.ExtractionSettings.from_json(recorded["extraction"])
        self.modalities = tuple(modalities_lib.ModalitySpec.from_json(spec) for spec in recorded["modalities"])
        self.limits = limits
        names = {spec.name for spec in self.modalities}
        paths = {"text": bert_preset, "visual": face_model}
        extracted = [name for name in ("acoustic", "visual", "text") if name in names and (
            name == "acoustic" or paths[name])]
        if "text" in extracted:
            from mmin_tf.features.text import preset_weights_file

            settings_lib.check_model_file(settings, "text", preset_weights_file(bert_preset))
        if "visual" in extracted:
            settings_lib.check_model_file(settings, "visual", face_model)
        # A served video without a face is a missing modality, whatever the training data did.
        self.extractor = MediaExtractor(
            dataclasses.replace(settings, no_face=settings_lib.NoFace.ABSENT), extracted, bert_preset, face_model)
        dims = self.extractor.feature_dims
        for spec in self.modalities:
            if spec.name in dims and dims[spec.name] != spec.feature_dim:
                raise ValueError(
                    f"The {spec.name} extractor gives {dims[spec.name]} values per frame; the model takes {spec.feature_dim}")
        self.extracted = tuple(extracted)

    def inputs(self, requests: Sequence[MediaRequest]) -> tuple[dict, list[dict]]:
        """`serving_default` inputs (numpy, batched, zero-padded) and, per request, the modalities
        it is missing and why (`{"visual": "no face found in the video"}`).

        Raises:
            MediaInputError: naming `instances[i].<field>`: no medium at all, an empty transcript,
                a medium over the limits or that cannot be decoded, a medium whose modality the
                model lacks or this front end was given no model for.
        """
        directory = tempfile.mkdtemp(prefix="mmin_tf_media_")
        try:
            records, missing = [], []
            for index, request in enumerate(requests):
                records.append(self._record(index, request, directory))
                missing.append({_MODALITY_OF[field]: "absent from the request" for field in MEDIA_FIELDS
                                if _MODALITY_OF[field] in {s.name for s in self.modalities}
                                and getattr(request, field) is None})
            results = self.extractor.extract(records)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        for index, result in enumerate(results):
            if result.no_face:
                missing[index]["visual"] = "no face found in the video"
            if result.error is not None:
                raise MediaInputError(result.error.replace(directory + os.sep, "").replace(
                    f"utterance 'instances[{index}]' (request): ", f"instances[{index}]: " if "no modality" in
                    result.error else ""))
        return self._batch([result.features for result in results]), missing

    def _record(self, index, request, directory) -> MediaRecord:
        where = f"instances[{index}]"
        given = [field for field in MEDIA_FIELDS if getattr(request, field) is not None]
        if not given:
            raise MediaInputError(f"{where}: no audio, transcript or video: at least one modality is needed")
        paths = {}
        for field in given:
            modality = _MODALITY_OF[field]
            if modality not in {spec.name for spec in self.modalities}:
                raise MediaInputError(f"{where}.{field}: the model has no {modality} modality")
            if modality not in self.extracted:
                raise MediaInputError(
                    f"{where}.{field}: the server has no {'--bert_preset' if field == TRANSCRIPT else '--face_model'} "
                    f"to extract {modality} features")
        if request.transcript is not None:
            if not request.transcript.strip():
                raise MediaInputError(f"{where}.transcript: the transcript is empty")
            if len(request.transcript) > self.limits.max_transcript_chars:
                raise MediaInputError(
                    f"{where}.transcript: {len(request.transcript)} characters exceed the limit of "
                    f"{self.limits.max_transcript_chars}")
        for field in (AUDIO, VIDEO):
            data = getattr(request, field)
            if data is None:
                continue
            if len(data) > self.limits.max_bytes:
                raise MediaInputError(f"{where}.{field}: {len(data)} bytes exceed the limit of {self.limits.max_bytes}")
            path = os.path.join(directory, f"{where}.{field}")
            with open(path, "wb") as f:
                f.write(data)
            seconds = _duration(field, path)
            if seconds is None:
                raise MediaInputError(f"{where}.{field}: cannot be decoded as {'audio' if field == AUDIO else 'video'}")
            if seconds > self.limits.max_seconds:
                raise MediaInputError(
                    f"{where}.{field}: {seconds:.1f} s exceed the limit of {self.limits.max_seconds:g} s")
            paths[field] = path
        try:
            region = FaceRegion.parse(request.face_region) if request.face_region else None
            return MediaRecord(
                utterance_id=where, speaker="request", group="request", label="request",
                audio=paths.get(AUDIO), transcript=request.transcript, video=paths.get(VIDEO),
                start=request.start, end=request.end, face_region=region, source="request")
        except ValueError as error:
            raise MediaInputError(f"{where}: {str(error).replace(f'utterance {where!r} (request): ', '')}") from None

    def _batch(self, features: list[dict]) -> dict:
        inputs = {}
        for spec in self.modalities:
            lengths = np.asarray([len(item[spec.name]) if spec.name in item else 0 for item in features], np.int32)
            padded = np.zeros((len(features), int(lengths.max()), spec.feature_dim), np.float32)
            for row, item in enumerate(features):
                if spec.name in item:
                    padded[row, :lengths[row]] = item[spec.name]
            inputs[spec.name], inputs[spec.length_key] = padded, lengths
        return inputs


def _duration(field: str, path: str) -> Optional[float]:
    """Seconds of the audio or video at `path`, None when it cannot be decoded."""
    if field == AUDIO:
        import soundfile

        try:
            return soundfile.info(path).duration
        except (RuntimeError, soundfile.LibsndfileError):
            return None
    import cv2

    capture = cv2.VideoCapture(path)
    try:
        fps, count = capture.get(cv2.CAP_PROP_FPS), capture.get(cv2.CAP_PROP_FRAME_COUNT)
        return count / fps if capture.isOpened() and fps > 0 and count > 0 else None
    finally:
        capture.release()
