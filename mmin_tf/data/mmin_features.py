"""Reads the feature release of the original MMIN authors (IEMOCAP and MSP-IMPROV).

Layout of a release directory (`features_dir`):

    A/comparE.h5                  acoustic: one h5 dataset per utterance id, (time, 130)
    A/comparE_mean_std.h5         optional: group per fold ("1", "2", ...) with `mean`, `std` (130,)
    V/denseface.h5                visual: one h5 dataset per utterance id, (time, 342)
    L/bert_large.h5               text: one h5 dataset per utterance id, (time, 1024)
    target/<fold>/{trn,val,tst}_label.npy      labels of the fold's train/validation/test split
    target/<fold>/{trn,val,tst}_int2name.npy   utterance ids, in the same order

Labels come in two shapes, both handled: IEMOCAP stores one-hot `(n, 4)` labels and ids as bytes
`(n, 1)`; MSP-IMPROV stores integer `(n,)` labels and ids as str `(n,)`. The release's labels are
class indices already; `DEFAULT_LABEL_NAMES` names them.

The release's folds are imported exactly as given. Speakers and groups are parsed from the ids
(`speaker_and_group`) only so that they are recorded in the dataset; they do not define folds here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import types
from typing import Iterator, Mapping, Optional, Sequence

import h5py
import numpy as np
from absl import logging

from mmin_tf import modalities as modalities_lib
from mmin_tf.data.folds import Folds
from mmin_tf.data.format import DataError, Utterance, fold_sort_key

DEFAULT_LABEL_NAMES = ("anger", "happy", "neutral", "sadness")
# Modality name -> feature file, relative to the release directory. MSP-IMPROV's acoustic file is
# `A/comparE_raw.h5`: pass `feature_files={"acoustic": "A/comparE_raw.h5"}`.
FEATURE_FILES: Mapping[str, str] = types.MappingProxyType(
    {"acoustic": "A/comparE.h5", "visual": "V/denseface.h5", "text": "L/bert_large.h5"}
)
MEAN_STD_FILE = "A/comparE_mean_std.h5"
TARGET_DIR = "target"
# Release file prefix -> mmin_tf split name.
SPLIT_PREFIXES: Mapping[str, str] = types.MappingProxyType(
    {"trn": "train", "val": "validation", "tst": "test"}
)
UNKNOWN = "unknown"

# Ses01F_impro01_F000 -> session Ses01, speaker gender F (the last part's first letter).
_IEMOCAP_ID = re.compile(r"^(Ses\d+)[A-Za-z]?_.*_([FM])[^_]*$")
# MSP-IMPROV-S01A-F01-P-FM01 -> session S01 (third field, first 3 chars), speaker F01.
_MSP_IMPROV_ID = re.compile(r"^MSP-IMPROV-(S\d\d)[^-]*-([^-]+)(?:-|$)")


def speaker_and_group(utterance_id: str) -> tuple[str, str]:
    """Parses `(speaker, group)` from an IEMOCAP or MSP-IMPROV utterance id.

    IEMOCAP `Ses01F_impro01_M012` -> `("Ses01M", "Ses01")`: the speaker is the session plus the
    gender letter that starts the last `_`-separated part. MSP-IMPROV `MSP-IMPROV-S01A-F01-P-FM01`
    -> `("F01", "S01")`. Any other id -> `("unknown", "unknown")`.
    """
    match = _IEMOCAP_ID.match(utterance_id)
    if match:
        session, gender = match.groups()
        return session + gender, session
    match = _MSP_IMPROV_ID.match(utterance_id)
    if match:
        session, speaker = match.groups()
        return speaker, session
    return UNKNOWN, UNKNOWN


@dataclasses.dataclass(frozen=True)
class Release:
    """An opened feature release: its folds and labels, with features read on demand.

    Attributes:
        features_dir: the release directory.
        modalities: the configured modalities, in order.
        feature_paths: modality name -> h5 file path.
        folds: fold name ("1", "2", ... as the directories under `target/`, in numeric order) ->
            split ("train", "validation", "test") -> utterance ids in the release's order.
        labels: utterance id -> class index.
        label_files: utterance id -> the label file it was first read from (for error messages).
        acoustic_statistics: the release's per-fold acoustic normalization, for comparison; mmin_tf
            recomputes statistics on each fold's training split. Fold name -> {"mean", "std"};
            empty when the release has no `A/comparE_mean_std.h5`.
    """

    features_dir: str
    modalities: tuple[modalities_lib.ModalitySpec, ...]
    feature_paths: Mapping[str, str]
    folds: Folds
    labels: Mapping[str, int]
    label_files: Mapping[str, str]
    acoustic_statistics: Mapping[str, Mapping[str, np.ndarray]]

    def utterances(self) -> Iterator[Utterance]:
        """Yields every utterance of any fold exactly once, in sorted id order.

        The h5 files stay open while the iterator runs; one utterance is in memory at a time.

        Raises:
            DataError: naming the h5 file and utterance id if an entry is missing or unreadable.
        """
        unknown = 0
        with contextlib.ExitStack() as stack:
            files = {
                name: stack.enter_context(_open_h5(path))
                for name, path in self.feature_paths.items()
            }
            for utterance_id in sorted(self.labels):
                features = {
                    spec.name: _read_entry(
                        files[spec.name], self.feature_paths[spec.name], utterance_id
                    )
                    for spec in self.modalities
                }
                speaker, group = speaker_and_group(utterance_id)
                unknown += speaker == UNKNOWN
                yield Utterance(
                    utterance_id=utterance_id,
                    speaker=speaker,
                    group=group,
                    label=self.labels[utterance_id],
                    features=features,
                    source=self._source(utterance_id),
                )
        if unknown:
            logging.warning(
                "%d utterance ids in %s match neither the IEMOCAP nor the MSP-IMPROV pattern; "
                "their speaker and group are recorded as %r",
                unknown, self.features_dir, UNKNOWN,
            )

    def _source(self, utterance_id: str) -> str:
        files = ", ".join(f"{name}={path}" for name, path in self.feature_paths.items())
        return f"label {self.label_files[utterance_id]}, features [{files}]"


def read_release(
    features_dir: str,
    modalities: Sequence[modalities_lib.ModalitySpec],
    feature_files: Optional[Mapping[str, str]] = None,
) -> Release:
    """Reads a release's folds and labels and checks that its feature files hold every utterance.

    Args:
        features_dir: the release directory (see the module docstring for its layout).
        modalities: the configured modalities; each needs a feature file.
        feature_files: modality name -> h5 path relative to `features_dir`, overriding
            `FEATURE_FILES` (e.g. `{"acoustic": "A/comparE_raw.h5"}` for MSP-IMPROV).

    Returns:
        The `Release`; features are read when `Release.utterances()` runs.

    Raises:
        ValueError: if a modality has no feature file or `feature_files` names an unknown modality.
        DataError: naming the file, for a missing or malformed target file, an utterance whose label
            differs between folds, a missing or unreadable h5 file, or an utterance missing from an
            h5 file.
    """
    modalities = modalities_lib.validate_modalities(modalities)
    feature_files = dict(feature_files or {})
    names = [spec.name for spec in modalities]
    unknown = sorted(set(feature_files) - set(names))
    if unknown:
        raise ValueError(
            f"`feature_files` names modalities {unknown} that are not configured ({names})"
        )
    relative = {**FEATURE_FILES, **feature_files}
    without_file = [name for name in names if name not in relative]
    if without_file:
        raise ValueError(
            f"No release feature file for modalities {without_file}; known files are "
            f"{dict(FEATURE_FILES)}. Pass `feature_files` (--feature_files=name:relative/path.h5)"
        )
    if not os.path.isdir(features_dir):
        raise DataError(f"Feature release directory {features_dir} not found")
    folds, labels, label_files = _read_targets(features_dir)
    if not labels:
        raise DataError(f"The folds of {features_dir}/{TARGET_DIR} list no utterances")
    feature_paths = {name: os.path.join(features_dir, relative[name]) for name in names}
    for name, path in feature_paths.items():
        _check_h5(path, name, labels)
    return Release(
        features_dir=features_dir,
        modalities=modalities,
        feature_paths=feature_paths,
        folds=folds,
        labels=labels,
        label_files=label_files,
        acoustic_statistics=read_mean_std(features_dir),
    )


def read_mean_std(features_dir: str) -> dict[str, dict[str, np.ndarray]]:
    """Reads `A/comparE_mean_std.h5`: fold name -> {"mean": (dim,), "std": (dim,)}.

    Returns `{}` when the release has no such file (MSP-IMPROV).
    """
    path = os.path.join(features_dir, MEAN_STD_FILE)
    if not os.path.exists(path):
        return {}
    statistics = {}
    with _open_h5(path) as f:
        for fold in sorted(f, key=fold_sort_key):
            group = f[fold]
            if not isinstance(group, h5py.Group) or not {"mean", "std"} <= set(group):
                raise DataError(
                    f"{path}: entry {fold!r} must be a group with datasets 'mean' and 'std'"
                )
            statistics[fold] = {
                key: np.asarray(group[key][()], dtype=np.float32) for key in ("mean", "std")
            }
    return statistics


def _read_targets(features_dir: str) -> tuple[Folds, dict[str, int], dict[str, str]]:
    target_dir = os.path.join(features_dir, TARGET_DIR)
    if not os.path.isdir(target_dir):
        raise DataError(f"Feature release {features_dir} has no {TARGET_DIR}/ directory")
    fold_names = sorted(
        (name for name in os.listdir(target_dir) if os.path.isdir(os.path.join(target_dir, name))),
        key=fold_sort_key,
    )
    if not fold_names:
        raise DataError(f"{target_dir} holds no fold directories")
    folds: Folds = {}
    labels: dict[str, int] = {}
    label_files: dict[str, str] = {}
    first_fold: dict[str, str] = {}
    for fold in fold_names:
        folds[fold] = {}
        for prefix, split in SPLIT_PREFIXES.items():
            label_path = os.path.join(target_dir, fold, f"{prefix}_label.npy")
            names_path = os.path.join(target_dir, fold, f"{prefix}_int2name.npy")
            ids, split_labels = _read_split(label_path, names_path)
            for utterance_id, label in zip(ids, split_labels):
                if utterance_id not in labels:
                    labels[utterance_id] = label
                    label_files[utterance_id] = label_path
                    first_fold[utterance_id] = fold
                elif labels[utterance_id] != label:
                    raise DataError(
                        f"Utterance {utterance_id!r} has label {labels[utterance_id]} in fold "
                        f"{first_fold[utterance_id]!r} ({label_files[utterance_id]}) but label "
                        f"{label} in fold {fold!r} ({label_path})"
                    )
            folds[fold][split] = ids
    return folds, labels, label_files


def _read_split(label_path: str, names_path: str) -> tuple[list[str], list[int]]:
    labels = _labels(_load_npy(label_path), label_path)
    ids = _ids(_load_npy(names_path), names_path)
    if len(ids) != len(labels):
        raise DataError(
            f"{names_path} lists {len(ids)} utterances but {label_path} has {len(labels)} labels"
        )
    seen = set()
    for utterance_id in ids:
        if utterance_id in seen:
            raise DataError(f"Utterance {utterance_id!r} is listed twice in {names_path}")
        seen.add(utterance_id)
    return ids, labels


def _load_npy(path: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise DataError(f"Target file {path} not found")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"Cannot read {path} as a .npy array: {error}") from None


def _labels(array: np.ndarray, path: str) -> list[int]:
    """One-hot `(n, classes)` (IEMOCAP) or integer `(n,)` (MSP-IMPROV) -> class indices."""
    if array.dtype.kind not in "fiub":
        raise DataError(f"{path}: labels must be numeric, received dtype {array.dtype}")
    if array.dtype.kind == "b":
        array = array.astype(np.uint8)
    if array.ndim == 2 and array.shape[1] > 1:
        empty = np.nonzero(array.max(axis=1) <= 0)[0]
        if empty.size:
            raise DataError(f"{path}: one-hot label rows {empty[:10].tolist()} have no class set")
        return np.argmax(array, axis=1).astype(int).tolist()
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise DataError(
            f"{path}: labels must be one-hot (n, classes) or integers (n,), received shape "
            f"{array.shape}"
        )
    rounded = np.rint(array)
    if not np.array_equal(rounded, array) or np.any(rounded < 0):
        raise DataError(f"{path}: labels must be non-negative integers")
    return rounded.astype(int).tolist()


def _ids(array: np.ndarray, path: str) -> list[str]:
    """Ids as bytes `(n, 1)` (IEMOCAP) or str `(n,)` (MSP-IMPROV) -> list of str."""
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim == 1 and array.size == 0:
        return []  # An empty np.save'd list has dtype float64.
    if array.ndim != 1 or array.dtype.kind not in "SU":
        raise DataError(
            f"{path}: utterance ids must be strings or bytes of shape (n,) or (n, 1), received "
            f"{array.dtype} {array.shape}"
        )
    if array.dtype.kind == "U":
        return [str(name) for name in array]
    try:
        return [name.decode("utf-8") for name in array]
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: utterance ids are not UTF-8: {error}") from None


@contextlib.contextmanager
def _open_h5(path: str) -> Iterator[h5py.File]:
    try:
        f = h5py.File(path, "r")
    except OSError as error:
        raise DataError(f"Cannot open {path} as an HDF5 file: {error}") from None
    with f:
        yield f


def _check_h5(path: str, name: str, labels: Mapping[str, int]) -> None:
    if not os.path.isfile(path):
        example = min(labels)
        raise DataError(
            f"Feature file {path} not found; it should hold the {name} features of the release's "
            f"{len(labels)} utterances (e.g. {example!r})"
        )
    with _open_h5(path) as f:
        missing = sorted(utterance_id for utterance_id in labels if utterance_id not in f)
    if missing:
        raise DataError(
            f"Feature file {path} has no entry for {len(missing)} utterances of the release's "
            f"folds: {missing[:10]}"
        )


def _read_entry(f: h5py.File, path: str, utterance_id: str) -> np.ndarray:
    entry = f.get(utterance_id)
    if not isinstance(entry, h5py.Dataset):
        problem = "no entry" if entry is None else "an entry that is not a dataset"
        raise DataError(f"Utterance {utterance_id!r}: {path} has {problem} for it")
    array = entry[()]
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
        raise DataError(
            f"Utterance {utterance_id!r}: {path} holds {getattr(array, 'dtype', type(array))} "
            "values; expected a float array"
        )
    with np.errstate(over="ignore", invalid="ignore"):  # Overflow becomes Inf, rejected later.
        return array.astype(np.float32, copy=False)
