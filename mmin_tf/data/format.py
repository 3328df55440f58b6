"""The on-disk dataset format: sharded TFRecords of `tf.train.SequenceExample` plus `dataset.json`.

See `docs/dataset_format.md` for the specification written for people producing the format with
other tools. In short, a dataset directory holds

    dataset.json                  DatasetInfo: modalities, label names, shards, folds, statistics
    folds.json                    {fold name: {"train": [ids], "validation": [ids], "test": [ids]}}
    records-00000-of-00004.tfrecord ...

and every record is one utterance:

    context:       utterance_id (bytes), speaker (bytes), group (bytes), label (int64)
    feature_lists: one per modality the utterance has, named after it; one float_list of
                   `feature_dim` per frame. A modality the utterance lacks (no face was found, no
                   transcript exists) has no feature list: it is absent, and reads as 0 frames.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

from mmin_tf import modalities as modalities_lib

FORMAT_VERSION = 1
INFO_FILENAME = "dataset.json"
FOLDS_FILENAME = "folds.json"
UTTERANCE_ID = "utterance_id"
SPEAKER = "speaker"
GROUP = "group"
LABEL = "label"
SPLITS = ("train", "validation", "test")


def fold_sort_key(name: str) -> tuple:
    """Orders fold names numerically when they are numbers ("2" before "10"), then by name."""
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


class DataError(ValueError):
    """Bad input data. The message names the utterance and the file."""


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One utterance with its frame-level features.

    Attributes:
        utterance_id: unique id within the corpus.
        speaker: speaker id; folds never put one speaker in two splits.
        group: recording group (IEMOCAP/MSP-IMPROV session); the unit left out in cross-validation.
        label: class index into the dataset's label names.
        features: modality name -> float array `(time, feature_dim)`; a modality the utterance
            lacks is left out (absent), but at least one is there.
        source: where the utterance came from (a file path), for error messages.
    """

    utterance_id: str
    speaker: str
    group: str
    label: int
    features: Mapping[str, np.ndarray]
    source: str = "<memory>"


def validate_utterance(
    utterance: Utterance,
    modalities: Sequence[modalities_lib.ModalitySpec],
    num_classes: int,
) -> None:
    """Raises `DataError` naming the utterance and its source if it breaks the format."""
    where = f"utterance {utterance.utterance_id!r} (from {utterance.source})"
    if not utterance.utterance_id:
        raise DataError(f"Empty utterance id in {utterance.source}")
    if not 0 <= utterance.label < num_classes:
        raise DataError(f"{where}: label {utterance.label} is outside [0, {num_classes})")
    expected = {spec.name for spec in modalities}
    received = set(utterance.features)
    if not received <= expected:
        raise DataError(
            f"{where}: features for unknown modalities {sorted(received - expected)}; the dataset's "
            f"modalities are {sorted(expected)}"
        )
    if not received:
        raise DataError(f"{where}: no modality at all; an utterance needs at least one of {sorted(expected)}")
    for spec in modalities:
        if spec.name not in utterance.features:
            continue  # absent
        # Checked as written (float32): a finite float64 beyond float32's range would become Inf.
        array = np.asarray(utterance.features[spec.name]).astype(np.float32)
        if array.ndim != 2 or array.shape[1] != spec.feature_dim:
            raise DataError(
                f"{where}: {spec.name} features must have shape (time, {spec.feature_dim}), "
                f"received {array.shape}"
            )
        if array.shape[0] == 0:
            raise DataError(f"{where}: {spec.name} sequence is empty (0 frames)")
        if not np.all(np.isfinite(array)):
            bad_frames = np.unique(np.nonzero(~np.isfinite(array))[0])
            raise DataError(
                f"{where}: {spec.name} features contain NaN or Inf "
                f"(frames {bad_frames[:10].tolist()})"
            )


def serialize_utterance(
    utterance: Utterance, modalities: Sequence[modalities_lib.ModalitySpec]
) -> bytes:
    """Encodes one validated utterance as a serialized `tf.train.SequenceExample`."""
    context = tf.train.Features(
        feature={
            UTTERANCE_ID: _bytes_feature(utterance.utterance_id),
            SPEAKER: _bytes_feature(utterance.speaker),
            GROUP: _bytes_feature(utterance.group),
            LABEL: tf.train.Feature(int64_list=tf.train.Int64List(value=[utterance.label])),
        }
    )
    feature_lists = {}
    for spec in modalities:
        if spec.name not in utterance.features:
            continue  # Absent feature list = missing modality (used by serving requests).
        frames = np.asarray(utterance.features[spec.name], dtype=np.float32)
        feature_lists[spec.name] = tf.train.FeatureList(
            feature=[tf.train.Feature(float_list=tf.train.FloatList(value=row)) for row in frames]
        )
    example = tf.train.SequenceExample(
        context=context, feature_lists=tf.train.FeatureLists(feature_list=feature_lists)
    )
    return example.SerializeToString()


def _bytes_feature(text: str) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode("utf-8")]))


def parse_sequence_examples(
    serialized: tf.Tensor, modalities: Sequence[modalities_lib.ModalitySpec]
) -> dict[str, tf.Tensor]:
    """Parses a batch of serialized SequenceExamples (pure TF, usable in `Dataset.map`).

    Args:
        serialized: string tensor `(batch,)`.
        modalities: the configured modalities.

    Returns:
        `utterance_id`, `speaker`, `group` (string, `(batch,)`), `label` (int32, `(batch,)`),
        for every modality `name` (float32, `(batch, time, feature_dim)`, zero padded) and
        `name_length` (int32, `(batch,)`; 0 where the feature list is absent).
    """
    context_spec = {
        UTTERANCE_ID: tf.io.FixedLenFeature([], tf.string, default_value=""),
        SPEAKER: tf.io.FixedLenFeature([], tf.string, default_value=""),
        GROUP: tf.io.FixedLenFeature([], tf.string, default_value=""),
        LABEL: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    }
    sequence_spec = {
        spec.name: tf.io.FixedLenSequenceFeature([spec.feature_dim], tf.float32, allow_missing=True)
        for spec in modalities
    }
    context, sequences, lengths = tf.io.parse_sequence_example(
        serialized, context_features=context_spec, sequence_features=sequence_spec
    )
    parsed = dict(context)
    parsed[LABEL] = tf.cast(context[LABEL], tf.int32)
    for spec in modalities:
        parsed[spec.name] = sequences[spec.name]
        parsed[spec.length_key] = tf.cast(lengths[spec.name], tf.int32)
    return parsed


def parse_sequence_example(
    serialized: tf.Tensor, modalities: Sequence[modalities_lib.ModalitySpec]
) -> dict[str, tf.Tensor]:
    """Parses one serialized SequenceExample: as `parse_sequence_examples` without the batch axis."""
    parsed = parse_sequence_examples(tf.expand_dims(serialized, 0), modalities)
    return {key: value[0] for key, value in parsed.items()}


@dataclasses.dataclass(frozen=True)
class LengthStatistics:
    """Frame counts of one modality over the whole dataset."""

    minimum: int
    maximum: int
    mean: float
    quantiles: Mapping[str, int]  # "0.5", "0.75", "0.9", "0.95", "0.99" -> frames

    QUANTILE_LEVELS = (0.5, 0.75, 0.9, 0.95, 0.99)

    @classmethod
    def from_lengths(cls, lengths: Sequence[int]) -> "LengthStatistics":
        lengths = np.asarray(lengths, dtype=np.int64)
        return cls(
            minimum=int(lengths.min()),
            maximum=int(lengths.max()),
            mean=float(lengths.mean()),
            quantiles={
                str(level): int(math.ceil(np.quantile(lengths, level)))
                for level in cls.QUANTILE_LEVELS
            },
        )

    def to_json(self) -> dict:
        return {
            "min": self.minimum,
            "max": self.maximum,
            "mean": self.mean,
            "quantiles": dict(self.quantiles),
        }

    @classmethod
    def from_json(cls, config: dict) -> "LengthStatistics":
        return cls(
            minimum=int(config["min"]),
            maximum=int(config["max"]),
            mean=float(config["mean"]),
            quantiles={key: int(value) for key, value in config["quantiles"].items()},
        )


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Everything `dataset.json` says about a dataset directory.

    Attributes:
        name: corpus name, free text.
        modalities: the dataset's modalities, in configured order (an utterance may lack some).
        label_names: class names; `label` in the records indexes this tuple.
        num_utterances: number of records over all shards.
        shards: record file names, relative to the dataset directory.
        length_statistics: modality name -> frame-count statistics of the utterances that have it.
        fold_counts: fold name -> split -> label name -> utterance count.
        presence: modality name -> utterances that have it (all of them in a complete dataset).
        fold_presence: fold name -> split -> modality name -> utterances that have it.
        source: how the dataset was produced (importer and its arguments).
        extraction: for datasets extracted from media (`python -m mmin_tf.extract`), how
            (`mmin_tf.features.settings.ExtractionSettings` as JSON, with the no-face count);
            None otherwise.
    """

    name: str
    modalities: tuple[modalities_lib.ModalitySpec, ...]
    label_names: tuple[str, ...]
    num_utterances: int
    shards: tuple[str, ...]
    length_statistics: Mapping[str, LengthStatistics]
    fold_counts: Mapping[str, Mapping[str, Mapping[str, int]]]
    source: Mapping[str, object]
    extraction: Optional[Mapping[str, object]] = None
    presence: Optional[Mapping[str, int]] = None
    fold_presence: Optional[Mapping[str, Mapping[str, Mapping[str, int]]]] = None

    def __post_init__(self):
        # Datasets written before absent modalities existed are complete.
        if self.presence is None:
            object.__setattr__(self, "presence", {spec.name: self.num_utterances for spec in self.modalities})
        if self.fold_presence is None:
            object.__setattr__(self, "fold_presence", {
                fold: {split: {spec.name: sum(labels.values()) for spec in self.modalities}
                       for split, labels in splits.items()}
                for fold, splits in self.fold_counts.items()})

    @property
    def is_complete(self) -> bool:
        """Every utterance has every modality."""
        return all(self.presence[spec.name] == self.num_utterances for spec in self.modalities)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def fold_names(self) -> tuple[str, ...]:
        return tuple(self.fold_counts)

    def to_json(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "modalities": [spec.to_json() for spec in self.modalities],
            "label_names": list(self.label_names),
            "num_utterances": self.num_utterances,
            "shards": list(self.shards),
            "length_statistics": {
                name: stats.to_json() for name, stats in self.length_statistics.items()
            },
            "fold_counts": self.fold_counts,
            "presence": dict(self.presence),
            "fold_presence": self.fold_presence,
            "source": dict(self.source),
            **({} if self.extraction is None else {"extraction": dict(self.extraction)}),
        }

    @classmethod
    def from_json(cls, config: dict) -> "DatasetInfo":
        if config.get("format_version") != FORMAT_VERSION:
            raise DataError(
                f"Unsupported dataset format_version {config.get('format_version')!r}; "
                f"this mmin_tf reads version {FORMAT_VERSION}"
            )
        return cls(
            name=config["name"],
            modalities=tuple(modalities_lib.ModalitySpec.from_json(m) for m in config["modalities"]),
            label_names=tuple(config["label_names"]),
            num_utterances=int(config["num_utterances"]),
            shards=tuple(config["shards"]),
            length_statistics={
                name: LengthStatistics.from_json(stats)
                for name, stats in config["length_statistics"].items()
            },
            fold_counts=config["fold_counts"],
            source=config.get("source", {}),
            extraction=config.get("extraction"),
            presence=config.get("presence"),
            fold_presence=config.get("fold_presence"),
        )


def load_info(data_dir: str) -> DatasetInfo:
    """Reads `dataset.json` from a dataset directory, with a clear error if it is not one."""
    path = os.path.join(data_dir, INFO_FILENAME)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(
            f"{data_dir!r} is not an mmin_tf dataset directory: {INFO_FILENAME} not found. "
            "Create one with `python -m mmin_tf.prepare`."
        )
    with tf.io.gfile.GFile(path) as f:
        return DatasetInfo.from_json(json.load(f))


def load_folds(data_dir: str) -> dict[str, dict[str, list[str]]]:
    """Reads `folds.json`: fold name -> split (train/validation/test) -> utterance ids."""
    with tf.io.gfile.GFile(os.path.join(data_dir, FOLDS_FILENAME)) as f:
        return json.load(f)


def shard_paths(data_dir: str, info: DatasetInfo) -> list[str]:
    return [os.path.join(data_dir, shard) for shard in info.shards]
