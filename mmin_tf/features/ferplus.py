"""FER+ (Barsoum et al., ICMI 2016): FER2013's faces with FER+'s crowd-sourced labels.

The release is two CSV files with one row per image, in the same order:

    fer2013.csv       emotion,pixels,Usage    (Kaggle's FER2013; `pixels`: 48 x 48 = 2304
                                               space-separated gray levels 0..255, row-major;
                                               `Usage`: Training, PublicTest or PrivateTest)
    fer2013new.csv    Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,
                      contempt,unknown,NF     (Microsoft's FERPlus repository: 10 taggers' votes
                                               per image; NF = not a face)

FER+'s own code (github.com/microsoft/FERPlus) fixes the rest, and this reader follows it:
- `src/generate_training_data.py` writes an image only when its `Image name` is not empty, into
  FER2013Train / FER2013Valid / FER2013Test by FER2013's `Usage` (Training / PublicTest /
  PrivateTest): here the train / validation / test splits.
- `src/ferplus.py` (`FERPlusReader._process_data`, mode "majority", and `load_folders`): votes of a
  single tagger are removed as outliers (every count <= 1 becomes 0, unknown and NF included);
  the class with more than half of the remaining votes is the label; without such a class the
  image is "unknown"; an image whose label is unknown or NF is not used. A tie can never hold
  more than half of the votes, so ties are excluded too.
The FER+ labels keep the first 8 columns' order: neutral, happiness, surprise, sadness, anger,
disgust, fear, contempt. Every excluded image is counted by its reason (`Exclusion`).

Images are resized from 48 x 48 to 64 x 64 with `cv2.resize` (bilinear), the input size of the
original Denseface (MMIN's denseface_extractor.py resizes its face crops the same way).
"""

from __future__ import annotations

import csv
import dataclasses
import enum
import os
from typing import Mapping, Sequence

import cv2
import numpy as np

from mmin_tf.data.format import DataError

EMOTIONS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
VOTE_COLUMNS = (*EMOTIONS, "unknown", "NF")
FER2013_COLUMNS = ("emotion", "pixels", "Usage")
FERPLUS_COLUMNS = ("Usage", "Image name", *VOTE_COLUMNS)
SPLITS = {"Training": "train", "PublicTest": "validation", "PrivateTest": "test"}  # FER2013 Usage -> split
SOURCE_SIZE = 48
IMAGE_SIZE = 64
_UNKNOWN = VOTE_COLUMNS.index("unknown")
_NOT_A_FACE = VOTE_COLUMNS.index("NF")


class Exclusion(enum.Enum):
    """Why an image has no FER+ label."""

    NO_IMAGE_NAME = "no_image_name"  # FER+ left `Image name` empty and wrote no image
    NO_MAJORITY = "no_majority"  # no class holds more than half of the votes (FER+ sets "unknown")
    UNKNOWN = "unknown"  # the majority voted "unknown"
    NOT_A_FACE = "not_a_face"  # the majority voted NF


@dataclasses.dataclass(frozen=True)
class Split:
    """One FER+ split.

    Attributes:
        images: float32 `(num_images, 64, 64, 1)`, gray levels 0..255.
        labels: int32 `(num_images,)`, indices into `EMOTIONS`.
        exclusions: `Exclusion` value -> images of the split left out for that reason.
    """

    images: np.ndarray
    labels: np.ndarray
    exclusions: Mapping[str, int]

    @property
    def label_counts(self) -> dict[str, int]:
        """Emotion name -> images with that label, in `EMOTIONS` order."""
        counts = np.bincount(self.labels, minlength=len(EMOTIONS))
        return {name: int(count) for name, count in zip(EMOTIONS, counts)}

    def summary(self) -> dict:
        """Image, label and exclusion counts, for logs and metrics files."""
        return {
            "num_images": int(len(self.labels)),
            "label_counts": self.label_counts,
            "exclusions": dict(self.exclusions),
        }


def majority_vote(votes: Sequence[int]) -> int | None:
    """FER+'s "majority" label of one image's 10 vote counts (`VOTE_COLUMNS` order).

    Counts of 1 are dropped as outliers; the column with more than half of what remains wins.

    Returns:
        An index into `VOTE_COLUMNS` (so 8 = unknown, 9 = NF), or None when no column has a
        majority (ties included).
    """
    kept = [count if count > 1 else 0 for count in votes]
    best = max(kept)
    if best > 0.5 * sum(kept):
        return kept.index(best)
    return None


def read_ferplus(fer2013_csv: str, ferplus_csv: str, image_size: int = IMAGE_SIZE) -> dict[str, Split]:
    """Reads FER2013's images with their FER+ majority labels.

    Args:
        fer2013_csv: path of `fer2013.csv`.
        ferplus_csv: path of FER+'s `fer2013new.csv`.
        image_size: side of the returned images.

    Returns:
        Split name ("train", "validation", "test") -> `Split`.

    Raises:
        DataError: a missing file, missing columns, different row counts, a bad `Usage`, a
            `Usage` that differs between the files, a pixel string that is not 2304 integers in
            0..255, or vote counts that are not non-negative integers; the message names the
            file and its line.
    """
    labels = _read_ferplus_rows(ferplus_csv)
    images = {split: [] for split in SPLITS.values()}
    split_labels = {split: [] for split in SPLITS.values()}
    exclusions = {split: {reason.value: 0 for reason in Exclusion} for split in SPLITS.values()}
    num_rows = 0
    with _open(fer2013_csv) as f:
        reader = csv.reader(f)
        width, columns = _header(reader, fer2013_csv, FER2013_COLUMNS)
        for row in reader:
            if not row:  # a blank line
                continue
            where = f"{fer2013_csv}, line {reader.line_num}"
            _check_length(row, width, where)
            if num_rows == len(labels):
                raise DataError(
                    f"{fer2013_csv} has more image rows than the {len(labels)} rows of {ferplus_csv} "
                    f"(first extra: line {reader.line_num}); FER+ has one row per FER2013 row"
                )
            usage, image_name, votes, label_where = labels[num_rows]
            num_rows += 1
            split = _split(row[columns["Usage"]].strip(), where)
            if row[columns["Usage"]].strip() != usage:
                raise DataError(
                    f"{where}: Usage {row[columns['Usage']]!r} but {label_where} says {usage!r}; "
                    "the two files must list the same images in the same order"
                )
            pixels = _pixels(row[columns["pixels"]], where)
            reason = _exclusion(image_name, votes)
            if reason is not None:
                exclusions[split][reason.value] += 1
                continue
            images[split].append(cv2.resize(pixels, (image_size, image_size), interpolation=cv2.INTER_LINEAR))
            split_labels[split].append(majority_vote(votes))
    if num_rows != len(labels):
        raise DataError(
            f"{fer2013_csv} has {num_rows} image rows but {ferplus_csv} has {len(labels)}; FER+ has "
            "one row per FER2013 row"
        )
    return {
        split: Split(
            images=np.asarray(images[split], np.float32).reshape(-1, image_size, image_size, 1),
            labels=np.asarray(split_labels[split], np.int32),
            exclusions=exclusions[split],
        )
        for split in SPLITS.values()
    }


def _open(path):
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file")
    return open(path, newline="", encoding="utf-8")


def _header(reader, path, required):
    """(number of columns, required column name -> index) from the header line."""
    header = next(reader, None)
    if header is None:
        raise DataError(f"{path}, line 1: empty file; expected the header {','.join(required)}")
    header = [name.strip() for name in header]
    missing = [name for name in required if name not in header]
    if missing:
        raise DataError(
            f"{path}, line 1: missing columns {missing}; expected {','.join(required)}. Received: {','.join(header)}"
        )
    return len(header), {name: header.index(name) for name in required}


def _check_length(row, width, where):
    if len(row) != width:
        raise DataError(f"{where}: {len(row)} fields; the header has {width}")


def _read_ferplus_rows(path):
    """[(Usage, image name, 10 vote counts, "path, line n")] of `fer2013new.csv`."""
    rows = []
    with _open(path) as f:
        reader = csv.reader(f)
        width, columns = _header(reader, path, FERPLUS_COLUMNS)
        for row in reader:
            if not row:  # a blank line
                continue
            where = f"{path}, line {reader.line_num}"
            _check_length(row, width, where)
            cells = [row[columns[name]].strip() for name in VOTE_COLUMNS]
            if not all(cell.isdecimal() for cell in cells):
                raise DataError(f"{where}: vote counts must be non-negative integers. Received: {cells}")
            usage, image_name = row[columns["Usage"]].strip(), row[columns["Image name"]].strip()
            rows.append((usage, image_name, [int(cell) for cell in cells], where))
    return rows


def _split(usage, where):
    if usage not in SPLITS:
        raise DataError(f"{where}: Usage must be one of {list(SPLITS)}. Received: {usage!r}")
    return SPLITS[usage]


def _pixels(text, where):
    """A 48 x 48 uint8 image from FER2013's space-separated gray levels."""
    values = text.split()
    expected = SOURCE_SIZE * SOURCE_SIZE
    try:
        pixels = np.asarray(values, np.int64)
    except ValueError:
        pixels = None
    if pixels is None or len(values) != expected:
        raise DataError(
            f"{where}: `pixels` must be {expected} space-separated integers in 0..255. Received "
            f"{len(values)} values, starting {' '.join(values[:4])!r}"
        )
    outside = pixels[(pixels < 0) | (pixels > 255)]
    if outside.size:
        raise DataError(f"{where}: pixel value {int(outside[0])} is outside 0..255")
    return pixels.astype(np.uint8).reshape(SOURCE_SIZE, SOURCE_SIZE)


def _exclusion(image_name, votes):
    if not image_name:
        return Exclusion.NO_IMAGE_NAME
    label = majority_vote(votes)
    if label is None:
        return Exclusion.NO_MAJORITY
    if label == _UNKNOWN:
        return Exclusion.UNKNOWN
    if label == _NOT_A_FACE:
        return Exclusion.NOT_A_FACE
    return None
