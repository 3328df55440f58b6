"""Writes a dataset directory atomically, streaming utterances into TFRecord shards."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Mapping, NamedTuple, Optional, Sequence

import tensorflow as tf
from absl import logging

from mmin_tf import modalities as modalities_lib
from mmin_tf.data import folds as folds_lib
from mmin_tf.data.format import (
    FOLDS_FILENAME,
    INFO_FILENAME,
    SPLITS,
    DataError,
    DatasetInfo,
    LengthStatistics,
    Utterance,
    serialize_utterance,
    validate_utterance,
)


class WrittenUtterance(NamedTuple):
    """What the writer keeps of an utterance written into a shard by another process."""

    utterance_id: str
    speaker: str
    group: str
    label: int
    lengths: Mapping[str, int]  # modality name -> frames; 0: absent
    source: str


class DatasetWriter:
    """Streams validated utterances into shards; the directory appears only when complete.

    Memory is bounded by one utterance plus per-utterance metadata (ids, speakers, lengths): the
    features go straight to disk. Everything is written into a hidden temporary directory beside
    `out_dir`, renamed to `out_dir` by `finish()`. If anything fails (including bad input) the
    temporary directory is deleted and `out_dir` is never created.

    Use as a context manager:

        with DatasetWriter(out_dir, name="iemocap", modalities=..., label_names=...) as writer:
            for utterance in utterances:
                writer.write(utterance)
            writer.finish(folds=None)  # None: speaker-independent folds from groups/speakers.

    A pipeline whose workers write shards themselves writes them into `directory` as
    `shard_name(index)` (validated records, `format.serialize_utterance`) and registers each, in
    index order, with `add_shard`; the rest (duplicate ids, folds, `dataset.json`, the rename) is
    the same.
    """

    def __init__(
        self,
        out_dir: str,
        *,
        name: str,
        modalities: Sequence[modalities_lib.ModalitySpec],
        label_names: Sequence[str],
        utterances_per_shard: int = 256,
        source: Optional[Mapping[str, object]] = None,
        extraction: Optional[Mapping[str, object]] = None,
    ):
        if utterances_per_shard < 1:
            raise ValueError(
                f"`utterances_per_shard` must be >= 1. Received: {utterances_per_shard}"
            )
        if not label_names or len(set(label_names)) != len(label_names):
            raise ValueError(f"`label_names` must be non-empty and unique. Received: {label_names}")
        self.out_dir = os.path.abspath(out_dir)
        self.name = name
        self.modalities = modalities_lib.validate_modalities(modalities)
        self.label_names = tuple(label_names)
        self.utterances_per_shard = utterances_per_shard
        self.source = dict(source or {})
        self.extraction = None if extraction is None else dict(extraction)
        self._temp_dir: Optional[str] = None
        self._writer: Optional[tf.io.TFRecordWriter] = None
        self._shards: list[str] = []
        self._in_shard = 0
        self._metadata: list[tuple[str, str, str, int]] = []
        self._sources: dict[str, str] = {}
        self._lengths: dict[str, list[int]] = {spec.name: [] for spec in self.modalities}

    def __enter__(self) -> "DatasetWriter":
        if os.path.exists(self.out_dir):
            raise FileExistsError(
                f"Output directory {self.out_dir!r} already exists; choose another --out or "
                "delete it first"
            )
        parent = os.path.dirname(self.out_dir)
        os.makedirs(parent, exist_ok=True)
        self._temp_dir = tempfile.mkdtemp(
            prefix=f".{os.path.basename(self.out_dir)}.incomplete-", dir=parent
        )
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._temp_dir is not None and os.path.exists(self._temp_dir):
            shutil.rmtree(self._temp_dir)
        if exc_type is None and not os.path.exists(self.out_dir):
            raise RuntimeError("DatasetWriter closed without finish(): nothing was written")

    @property
    def directory(self) -> str:
        """The hidden directory being written; renamed to `out_dir` by `finish()`."""
        if self._temp_dir is None:
            raise RuntimeError("Use DatasetWriter as a context manager")
        return self._temp_dir

    @staticmethod
    def shard_name(index: int) -> str:
        """The name of shard `index` while the dataset is written (`finish` adds the count)."""
        return f"records-{index:05d}.tfrecord"

    def write(self, utterance: Utterance) -> None:
        """Validates and appends one utterance. Raises `DataError` naming it if it is bad."""
        directory = self.directory
        validate_utterance(utterance, self.modalities, len(self.label_names))
        lengths = {spec.name: len(utterance.features.get(spec.name, ())) for spec in self.modalities}
        self._remember(WrittenUtterance(
            utterance.utterance_id, utterance.speaker, utterance.group, utterance.label, lengths, utterance.source))
        if self._writer is None:
            shard = self.shard_name(len(self._shards))
            self._shards.append(shard)
            self._writer = tf.io.TFRecordWriter(os.path.join(directory, shard))
        self._writer.write(serialize_utterance(utterance, self.modalities))
        self._in_shard += 1
        if self._in_shard == self.utterances_per_shard:
            self._writer.close()
            self._writer = None
            self._in_shard = 0

    def add_shard(self, utterances: Sequence[WrittenUtterance]) -> str:
        """Registers the next shard, written into `directory` as `shard_name(index)` by another
        process, holding `utterances` (validated) in file order; returns its name.

        Raises:
            DataError: a duplicate utterance id.
            FileNotFoundError: the shard file is not there.
        """
        if self._writer is not None:
            raise RuntimeError("add_shard cannot follow write() into an unfinished shard")
        shard = self.shard_name(len(self._shards))
        if not os.path.isfile(os.path.join(self.directory, shard)):
            raise FileNotFoundError(f"Shard {shard} was not written into {self.directory}")
        for utterance in utterances:
            self._remember(utterance)
        self._shards.append(shard)
        return shard

    def _remember(self, utterance: WrittenUtterance) -> None:
        if utterance.utterance_id in self._sources:
            raise DataError(
                f"Duplicate utterance id {utterance.utterance_id!r}: in "
                f"{self._sources[utterance.utterance_id]} and in {utterance.source}"
            )
        self._sources[utterance.utterance_id] = utterance.source
        self._metadata.append((utterance.utterance_id, utterance.speaker, utterance.group, utterance.label))
        for spec in self.modalities:
            self._lengths[spec.name].append(int(utterance.lengths.get(spec.name, 0)))

    def finish(self, folds: Optional[folds_lib.Folds] = None) -> DatasetInfo:
        """Writes folds and `dataset.json`, then renames the directory into place.

        Args:
            folds: fold name -> split -> utterance ids, e.g. from an imported release. `None`
                derives speaker-independent folds from the utterances' groups and speakers.
        """
        if not self._metadata:
            raise DataError("No utterances were written; refusing to create an empty dataset")
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if folds is None:
            folds = folds_lib.speaker_independent_folds(
                (utterance_id, speaker, group) for utterance_id, speaker, group, _ in self._metadata
            )
        folds_lib.validate_folds(folds, set(self._sources))
        never = [name for name, lengths in self._lengths.items() if not any(lengths)]
        if never:
            raise DataError(f"Modalities {never} are absent from every utterance; leave them out of the dataset")
        shards = self._rename_shards()
        info = DatasetInfo(
            name=self.name,
            modalities=self.modalities,
            label_names=self.label_names,
            num_utterances=len(self._metadata),
            shards=tuple(shards),
            length_statistics={
                name: LengthStatistics.from_lengths([length for length in lengths if length])
                for name, lengths in self._lengths.items()
            },
            fold_counts=self._fold_counts(folds),
            presence={name: sum(1 for length in lengths if length) for name, lengths in self._lengths.items()},
            fold_presence=self._fold_presence(folds),
            source=self.source,
            extraction=self.extraction,
        )
        with open(os.path.join(self._temp_dir, FOLDS_FILENAME), "w") as f:
            json.dump(folds, f)
        with open(os.path.join(self._temp_dir, INFO_FILENAME), "w") as f:
            json.dump(info.to_json(), f, indent=2)
        os.rename(self._temp_dir, self.out_dir)
        self._temp_dir = None
        logging.info(
            "Wrote %d utterances in %d shards, %d folds to %s",
            info.num_utterances, len(shards), len(folds), self.out_dir,
        )
        return info

    def _rename_shards(self) -> list[str]:
        final = []
        for index, shard in enumerate(self._shards):
            name = f"records-{index:05d}-of-{len(self._shards):05d}.tfrecord"
            os.rename(os.path.join(self._temp_dir, shard), os.path.join(self._temp_dir, name))
            final.append(name)
        return final

    def _fold_presence(self, folds: folds_lib.Folds) -> dict[str, dict[str, dict[str, int]]]:
        row = {utterance_id: index for index, (utterance_id, _, _, _) in enumerate(self._metadata)}
        return {
            fold: {split: {name: sum(1 for utterance_id in splits[split] if lengths[row[utterance_id]])
                           for name, lengths in self._lengths.items()}
                   for split in SPLITS}
            for fold, splits in folds.items()
        }

    def _fold_counts(self, folds: folds_lib.Folds) -> dict[str, dict[str, dict[str, int]]]:
        label_of = {utterance_id: label for utterance_id, _, _, label in self._metadata}
        counts = {}
        for fold, splits in folds.items():
            counts[fold] = {}
            for split in SPLITS:
                per_label = {name: 0 for name in self.label_names}
                for utterance_id in splits[split]:
                    per_label[self.label_names[label_of[utterance_id]]] += 1
                counts[fold][split] = per_label
        return counts
