"""From media records to utterance features: the three extractors behind one call.

`MediaExtractor` is the one code path from media to features: the extraction pipeline, the
`predict` command and the server's pre-processing all call it with the settings recorded in the
dataset. Models load once, when it is built; texts and faces of a batch of records are encoded
together.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional, Sequence

import numpy as np

from mmin_tf.data.format import Utterance
from mmin_tf.data.media_manifest import MediaRecord
from mmin_tf.features import media
from mmin_tf.features.acoustic import AcousticExtractor
from mmin_tf.features.media import MediaError
from mmin_tf.features.settings import AUDIO_MODALITY, TEXT_MODALITY, VIDEO_MODALITY, ExtractionSettings, NoFace
from mmin_tf.features.text import TextExtractor
from mmin_tf.features.visual import VisualExtractor


@dataclasses.dataclass(frozen=True)
class Extracted:
    """The outcome for one record.

    Attributes:
        record: the media record.
        features: modality name -> float32 `(frames, dim)`; None when extraction failed.
        error: why it failed (names the utterance and the file), or None.
        no_face: the record's video had no face in any sampled frame.
    """

    record: MediaRecord
    features: Optional[Mapping[str, np.ndarray]]
    error: Optional[str] = None
    no_face: bool = False

    def utterance(self, label_index: Mapping[str, int]) -> Utterance:
        """The extracted utterance, labelled by `label_index` (class name -> index)."""
        record = self.record
        return Utterance(
            utterance_id=record.utterance_id, speaker=record.speaker, group=record.group,
            label=label_index[record.label], features=dict(self.features), source=record.source,
        )


class MediaExtractor:
    """Extracts the configured modalities of media records.

    Args:
        settings: `ExtractionSettings`.
        modalities: the modality names to extract, among acoustic (from `audio`), text (from
            `transcript`) and visual (from `video`).
        bert_preset: the BERT preset directory (needed for text).
        face_model: the face model `.keras` file (needed for visual).
        text_batch_size, face_batch_size: windows / faces encoded together.
    """

    def __init__(
        self,
        settings: ExtractionSettings,
        modalities: Sequence[str],
        bert_preset: Optional[str] = None,
        face_model: Optional[str] = None,
        text_batch_size: int = 16,
        face_batch_size: int = 64,
    ):
        unknown = sorted(set(modalities) - {AUDIO_MODALITY, TEXT_MODALITY, VIDEO_MODALITY})
        if unknown or not modalities:
            raise ValueError(
                f"`modalities` are some of {[AUDIO_MODALITY, VIDEO_MODALITY, TEXT_MODALITY]}. Received: {list(modalities)}")
        if TEXT_MODALITY in modalities and not bert_preset:
            raise ValueError("Extracting text needs a BERT preset directory (--bert_preset)")
        if VIDEO_MODALITY in modalities and not face_model:
            raise ValueError("Extracting visual features needs a face model (--face_model)")
        self.settings = settings
        self.modalities = tuple(modalities)
        self.acoustic = AcousticExtractor(settings.acoustic) if AUDIO_MODALITY in modalities else None
        self.text = TextExtractor(bert_preset, settings.text, text_batch_size) if TEXT_MODALITY in modalities else None
        self.visual = (
            VisualExtractor(face_model, settings.visual, face_batch_size) if VIDEO_MODALITY in modalities else None)

    @property
    def feature_dims(self) -> dict[str, int]:
        """Modality name -> features per frame."""
        dims = {}
        if self.acoustic is not None:
            dims[AUDIO_MODALITY] = AcousticExtractor.feature_dim
        if self.visual is not None:
            dims[VIDEO_MODALITY] = self.visual.feature_dim
        if self.text is not None:
            dims[TEXT_MODALITY] = self.text.feature_dim
        return dims

    def extract(self, records: Sequence[MediaRecord]) -> list[Extracted]:
        """Every configured modality of every record; a record's failure does not stop the others.

        A modality whose media the record lacks is left out of its features (absent), and so is
        the visual one when no face is found with `NoFace.ABSENT` (`ZEROS`: one zero frame;
        `ERROR`: the record fails). A record that ends up with no modality at all fails.
        """
        features = [{} for _ in records]
        errors: list[Optional[str]] = [None] * len(records)
        no_face = [False] * len(records)

        def fail(index, error):
            errors[index] = errors[index] or f"{records[index].where}: {error}"

        for index, record in enumerate(records):
            if self.acoustic is None or record.audio is None:
                continue
            try:
                features[index][AUDIO_MODALITY] = self._acoustic(record)
            except MediaError as error:
                fail(index, error)
        if self.text is not None:
            self._texts(records, features, fail)
        if self.visual is not None:
            self._faces(records, features, no_face, fail)
        for index in range(len(records)):
            if not features[index]:
                fail(index, f"no modality: none of {list(self.modalities)} could be extracted "
                            f"(no face found: {no_face[index]})")
        return [
            Extracted(record, None if error else features[index], error, no_face[index])
            for index, (record, error) in enumerate(zip(records, errors))
        ]

    def _acoustic(self, record: MediaRecord) -> np.ndarray:
        if record.audio is None:
            raise MediaError("no audio for the acoustic modality")
        samples = media.read_audio(record.audio, self.settings.acoustic.sample_rate, record.start, record.end)
        return self.acoustic.extract(samples, f"audio {record.audio}")

    def _texts(self, records, features, fail) -> None:
        wanted = [index for index, record in enumerate(records) if record.transcript is not None]
        try:
            encoded = self.text.extract_batch([records[i].transcript for i in wanted], ["transcript"] * len(wanted))
        except MediaError:  # one bad text: encode them one by one to tell which
            encoded = []
            for index in wanted:
                try:
                    encoded.extend(self.text.extract_batch([records[index].transcript], ["transcript"]))
                except MediaError as error:
                    fail(index, error)
                    encoded.append(None)
        for index, vectors in zip(wanted, encoded):
            if vectors is not None:
                features[index][TEXT_MODALITY] = vectors

    def _faces(self, records, features, no_face, fail) -> None:
        crops = {}
        for index, record in enumerate(records):
            if record.video is None:
                continue
            try:
                crops[index], _ = self.visual.faces(record.video, *record.video_span, record.face_region)
            except MediaError as error:
                fail(index, error)
        indices = list(crops)
        try:
            encoded = self.visual.encode(np.concatenate([crops[i] for i in indices])) if indices else None
            encoded = np.split(encoded, np.cumsum([len(crops[i]) for i in indices])[:-1]) if indices else []
        except MediaError:  # non-finite features: encode record by record to tell which
            encoded = []
            for index in indices:
                try:
                    encoded.append(self.visual.encode(crops[index], f"video {records[index].video}"))
                except MediaError as error:
                    fail(index, error)
                    encoded.append(None)
        for index, vectors in zip(indices, encoded):
            if vectors is None:
                continue
            if len(vectors):
                features[index][VIDEO_MODALITY] = vectors
                continue
            no_face[index] = True
            if self.settings.no_face is NoFace.ERROR:
                fail(index, f"no face found in video {records[index].video}")
            elif self.settings.no_face is NoFace.ZEROS:
                features[index][VIDEO_MODALITY] = np.zeros((1, self.visual.feature_dim), np.float32)
