"""The media manifest: one row per utterance pointing at its recordings, the input of extraction.

    utterance_id,speaker,group,label,audio,transcript,video,start,end,video_start,video_end,face_region
    Ses01F_impro01_F000,Ses01F,Ses01,neutral,wav/Ses01F_impro01_F000.wav,Excuse me.,avi/Ses01F_impro01.avi,,,6.2901,8.2357,0:0:0.5:1

The first four columns are required; every other column may be left out of the header or left
empty in a row:

- `audio`: a wav or flac file (any sample rate and channel count), relative to the manifest's
  directory or absolute.
- `transcript`: the text itself, or a UTF-8 text file when the cell ends in `.txt`.
- `video`: a video file OpenCV can open.
- `start`, `end`: the utterance's span in seconds inside its media, applied to audio and video;
  empty: from the beginning / to the end.
- `video_start`, `video_end`: the span inside the video alone, when the video is cut otherwise
  than the audio (IEMOCAP: one wav per utterance, one video per dialogue); empty: `start`, `end`.
- `face_region`: `left:top:right:bottom`, fractions of the frame in [0, 1], where the speaking
  face is searched (IEMOCAP's frames show both actors); empty: the whole frame.

A modality whose column is absent or empty is not extracted for that utterance. `read_media_manifest`
streams `MediaRecord`s with the paths resolved and every cell checked; `write_media_manifest` writes
records back (the corpus readers' output, `--media_manifest_only`).
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
from typing import Iterable, Iterator, Optional

from mmin_tf import atomic_files
from mmin_tf.data.format import GROUP, LABEL, SPEAKER, UTTERANCE_ID, DataError

AUDIO = "audio"
TRANSCRIPT = "transcript"
VIDEO = "video"
START = "start"
END = "end"
VIDEO_START = "video_start"
VIDEO_END = "video_end"
FACE_REGION = "face_region"
REQUIRED_COLUMNS = (UTTERANCE_ID, SPEAKER, GROUP, LABEL)
OPTIONAL_COLUMNS = (AUDIO, TRANSCRIPT, VIDEO, START, END, VIDEO_START, VIDEO_END, FACE_REGION)
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
TRANSCRIPT_FILE_SUFFIX = ".txt"


@dataclasses.dataclass(frozen=True)
class FaceRegion:
    """Where in a frame the face is searched, as fractions of its width and height."""

    left: float
    top: float
    right: float
    bottom: float

    def __post_init__(self):
        values = (self.left, self.top, self.right, self.bottom)
        if not all(0.0 <= value <= 1.0 for value in values) or self.left >= self.right or self.top >= self.bottom:
            raise ValueError(
                "A face region is left:top:right:bottom fractions in [0, 1] with left < right and "
                f"top < bottom. Received: {':'.join(str(value) for value in values)}"
            )

    @classmethod
    def parse(cls, text: str) -> "FaceRegion":
        parts = text.split(":")
        try:
            values = [float(part) for part in parts]
        except ValueError:
            values = []
        if len(values) != 4:
            raise ValueError(f"A face region is left:top:right:bottom, e.g. 0:0:0.5:1. Received: {text!r}")
        return cls(*values)

    def __str__(self) -> str:
        return ":".join(f"{value:g}" for value in (self.left, self.top, self.right, self.bottom))

    def pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """`(x0, y0, x1, y1)` of the region in a `width` x `height` frame (x1, y1 exclusive)."""
        return (
            int(round(self.left * width)), int(round(self.top * height)),
            int(round(self.right * width)), int(round(self.bottom * height)),
        )


@dataclasses.dataclass(frozen=True)
class MediaRecord:
    """One utterance of a media manifest.

    Attributes:
        utterance_id, speaker, group: as in the dataset format.
        label: the class name.
        audio: absolute path of the audio file, or None.
        transcript: the text, or None.
        video: absolute path of the video file, or None.
        start, end: span in seconds inside the media (None: from the beginning / to the end).
        video_start, video_end: span inside the video alone (None: `start` / `end`).
        face_region: where the face is searched in the video's frames (None: the whole frame).
        source: where the record came from (manifest and line), for error messages.
    """

    utterance_id: str
    speaker: str
    group: str
    label: str
    audio: Optional[str] = None
    transcript: Optional[str] = None
    video: Optional[str] = None
    start: Optional[float] = None
    end: Optional[float] = None
    video_start: Optional[float] = None
    video_end: Optional[float] = None
    face_region: Optional[FaceRegion] = None
    source: str = "<memory>"

    def __post_init__(self):
        where = f"utterance {self.utterance_id!r} ({self.source})"
        for name in REQUIRED_COLUMNS:
            if not getattr(self, name):
                raise DataError(f"{where}: empty {name}")
        for name in (START, END, VIDEO_START, VIDEO_END):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise DataError(f"{where}: {name} must be a non-negative number of seconds. Received: {value}")
        for (start_name, start), (end_name, end) in (((START, self.start), (END, self.end)), zip(
                (VIDEO_START, VIDEO_END), self.video_span)):
            if start is not None and end is not None and end <= start:
                raise DataError(f"{where}: {end_name} {end} is not after {start_name} {start}")
        if self.transcript is not None and not self.transcript.strip():
            raise DataError(f"{where}: the transcript is empty")
        if self.audio is None and self.transcript is None and self.video is None:
            raise DataError(f"{where}: no audio, transcript or video: nothing to extract")

    @property
    def video_span(self) -> tuple[Optional[float], Optional[float]]:
        """`(start, end)` inside the video: `video_start`/`video_end`, else `start`/`end`."""
        return (self.start if self.video_start is None else self.video_start,
                self.end if self.video_end is None else self.video_end)

    @property
    def where(self) -> str:
        """The record, for error messages: its id and its source."""
        return f"utterance {self.utterance_id!r} ({self.source})"


def read_header(path: str) -> list[str]:
    """The manifest's columns, checked (see `read_media_manifest`)."""
    return _read_header(path)


def read_media_manifest(path: str) -> Iterator[MediaRecord]:
    """Streams the records of a media manifest, one row at a time (see the module docstring).

    The header is checked when this function is called, rows as the iterator advances.

    Raises:
        DataError: naming the manifest and line: a missing manifest, a header without the required
            columns or with unknown or repeated ones, a row with the wrong number of fields, an
            empty required cell, a bad number or face region, a transcript file that does not
            exist or is not UTF-8 text, a row with no modality.
    """
    header = _read_header(path)
    return _read_rows(path, header)


def _open(path: str):
    return open(path, newline="", encoding="utf-8-sig")


def _read_header(path: str) -> list[str]:
    if not os.path.isfile(path):
        raise DataError(f"Media manifest {path} not found")
    with _open(path) as f:
        header = next(csv.reader(f), None)
    if header is None:
        raise DataError(f"Media manifest {path} is empty; line 1 must be the header")
    header = [column.strip() for column in header]
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    unknown = [column for column in header if column not in COLUMNS]
    repeated = sorted({column for column in header if header.count(column) > 1})
    if missing or unknown or repeated:
        problems = [f"{text} {values}" for text, values in (
            ("missing columns", missing), ("unknown columns", unknown), ("repeated columns", repeated)) if values]
        raise DataError(
            f"Media manifest {path} line 1: header has " + ", ".join(problems)
            + f". Required: {list(REQUIRED_COLUMNS)}; optional: {list(OPTIONAL_COLUMNS)}. Received: {header}"
        )
    return header


def _read_rows(path: str, header: list[str]) -> Iterator[MediaRecord]:
    base_dir = os.path.dirname(os.path.abspath(path))
    with _open(path) as f:
        reader = csv.reader(f)
        next(reader)
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            where = f"Media manifest {path} line {line}"
            if len(row) != len(header):
                raise DataError(f"{where}: expected {len(header)} fields ({header}), received {len(row)}: {row}")
            cells = {column: cell.strip() for column, cell in zip(header, row)}
            if cells.get(UTTERANCE_ID):
                where = f"{where}, utterance {cells[UTTERANCE_ID]!r}"
            try:
                record = _record(cells, base_dir, f"{path} line {line}")
            except DataError:
                raise  # names the manifest line already
            except ValueError as error:
                raise DataError(f"{where}: {error}") from None
            yield record


def _record(cells: dict, base_dir: str, source: str) -> MediaRecord:
    def path_of(column):
        cell = cells.get(column, "")
        return os.path.join(base_dir, cell) if cell else None

    def seconds(column):
        cell = cells.get(column, "")
        if not cell:
            return None
        try:
            return float(cell)
        except ValueError:
            raise ValueError(f"{column} must be a number of seconds. Received: {cell!r}") from None

    transcript = cells.get(TRANSCRIPT, "") or None
    if transcript is not None and transcript.endswith(TRANSCRIPT_FILE_SUFFIX):
        transcript = _read_transcript_file(os.path.join(base_dir, transcript))
    region = cells.get(FACE_REGION, "")
    return MediaRecord(
        utterance_id=cells[UTTERANCE_ID], speaker=cells[SPEAKER], group=cells[GROUP], label=cells[LABEL],
        audio=path_of(AUDIO), transcript=transcript, video=path_of(VIDEO),
        start=seconds(START), end=seconds(END), video_start=seconds(VIDEO_START), video_end=seconds(VIDEO_END),
        face_region=FaceRegion.parse(region) if region else None,
        source=source,
    )


def _read_transcript_file(path: str) -> str:
    if not os.path.isfile(path):
        raise ValueError(f"transcript file {path} not found")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except UnicodeDecodeError as error:
        raise ValueError(f"transcript file {path} is not UTF-8 text ({error})") from None


def write_media_manifest(path: str, records: Iterable[MediaRecord]) -> int:
    """Writes `records` as a media manifest at `path` (atomically); returns the row count.

    Paths are written as they are in the records (absolute); transcripts as text.
    """
    count = 0
    with atomic_files.replacing(path) as temporary:
        with open(temporary, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            for record in records:
                writer.writerow([
                    record.utterance_id, record.speaker, record.group, record.label,
                    record.audio or "", record.transcript or "", record.video or "",
                    *("" if value is None else repr(value)
                      for value in (record.start, record.end, record.video_start, record.video_end)),
                    "" if record.face_region is None else str(record.face_region),
                ])
                count += 1
    return count
