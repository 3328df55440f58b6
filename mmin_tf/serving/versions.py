"""TF Serving's version policy for one model base path: serve the newest complete version.

A version is an integer-named directory under the model base path; it is complete when it holds
`saved_model.pb` (`mmin_tf.export` writes a version under a hidden name and renames it into place
when it is whole; a directory without `saved_model.pb` is still being copied by another tool and
is looked at again on the next poll). Each poll (`VersionWatcher.poll`) serves the newest complete
version that loads and warms up:

- a new version is loaded, its front end for raw media built and its warm-up requests replayed
  (`assets.extra/tf_serving_warmup_requests`, TF Serving's format) *before* it takes traffic; then
  the watcher's reference to the serving `ServedVersion` is replaced in one assignment. A
  `ServedVersion` is immutable: a request reads the reference once and uses that version to the
  end, so requests in flight finish on the version they began with, which is freed when the last
  of them is done;
- a version that fails to load or to warm up is refused and logged, and the one serving keeps
  serving; it is remembered by its contents (every file's path, size and modification time), so it
  is not tried again until its files change;
- a version whose directory is removed stops being served: the newest remaining complete version is
  loaded in its place (while it loads, the removed one, already in memory, answers). With no usable
  version left, the model is not ready (HTTP 503) until one appears.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import threading
import types
from typing import Any, Callable, Mapping, Optional

import numpy as np
import tensorflow as tf
from absl import logging

from mmin_tf.export.saved_model import SERVING_SIGNATURE, WARMUP_FILE
from mmin_tf.serving import media_inputs, payloads

SAVED_MODEL_FILE = "saved_model.pb"
# TF Serving refuses a version with more warm-up records than this (its WarmupConsts::kMaxNumRecords).
MAX_WARMUP_RECORDS = 1000


class VersionLoadError(Exception):
    """A version that cannot be served; the message says why."""


@dataclasses.dataclass(frozen=True)
class ServedVersion:
    """One loaded, warmed-up version. Never changed once made (see the module docstring).

    Attributes:
        version: the version number (its directory's name).
        path: the version directory.
        fingerprint: its contents when it was loaded (`fingerprint`).
        signatures: signature name -> concrete function (read-only).
        front_end: the raw-media front end, or None when raw media cannot be served.
        front_end_refusal: why raw media cannot be served (None when they can).
        loaded: the loaded SavedModel; held so that its variables live as long as this version.
    """

    version: int
    path: str
    fingerprint: tuple
    signatures: Mapping[str, Any]
    front_end: Optional[media_inputs.MediaFrontEnd]
    front_end_refusal: Optional[str]
    loaded: Any = dataclasses.field(repr=False)


def complete_versions(model_base_path: str) -> dict[int, str]:
    """Version number -> directory, for the integer-named directories holding `saved_model.pb`."""
    try:
        names = os.listdir(model_base_path)
    except FileNotFoundError:
        return {}
    found = {}
    for name in names:
        path = os.path.join(model_base_path, name)
        if re.fullmatch(r"\d+", name) and os.path.isfile(os.path.join(path, SAVED_MODEL_FILE)):
            found[int(name)] = path
    return found


def fingerprint(path: str) -> tuple:
    """Every file under `path` as `(relative path, size, modification time in ns)`, sorted."""
    entries = []
    for directory, _, files in os.walk(path):
        for name in files:
            full = os.path.join(directory, name)
            stat = os.stat(full)
            entries.append((os.path.relpath(full, path), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(entries))


def warm_up(path: str, signatures: Mapping[str, Any]) -> int:
    """Replays the version's TF Serving warm-up requests; returns how many ran (0 without a file).

    Raises:
        VersionLoadError: an unreadable record, one that is not a `predict_log`, more than
            `MAX_WARMUP_RECORDS`, an unknown signature, a request the signature refuses, or an
            output with NaN or Inf.
    """
    warmup_file = os.path.join(path, WARMUP_FILE)
    if not os.path.isfile(warmup_file):
        return 0
    from tensorflow_serving.apis import prediction_log_pb2

    count = 0
    try:
        records = tf.data.TFRecordDataset(warmup_file).as_numpy_iterator()
        records = list(itertools.islice(records, MAX_WARMUP_RECORDS + 1))
        if len(records) > MAX_WARMUP_RECORDS:
            raise VersionLoadError(f"{WARMUP_FILE} has more than {MAX_WARMUP_RECORDS} records (TF Serving's limit)")
        for record in records:
            count += 1
            log = prediction_log_pb2.PredictionLog.FromString(record)
            if log.WhichOneof("log_type") != "predict_log":
                raise VersionLoadError(
                    f"{WARMUP_FILE} record {count} is a {log.WhichOneof('log_type')}; "
                    "only predict_log records are served")
            request = log.predict_log.request
            name = request.model_spec.signature_name or SERVING_SIGNATURE
            if name not in signatures:
                raise VersionLoadError(
                    f"{WARMUP_FILE} record {count} asks for signature {name!r}, which the model lacks")
            inputs = {key: tf.constant(tf.make_ndarray(value)) for key, value in request.inputs.items()}
            outputs = signatures[name](**inputs)
            for key, value in outputs.items():
                value = value.numpy()
                if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                    raise VersionLoadError(f"{WARMUP_FILE} record {count}: output {key!r} holds NaN or Inf")
    except VersionLoadError:
        raise
    except Exception as error:  # any failure of a replayed request refuses the version
        message = payloads.tf_error_message(getattr(error, "message", None) or str(error))
        raise VersionLoadError(
            f"{WARMUP_FILE} record {count} failed: {type(error).__name__}: {message[:500]}") from error
    return count


def load_version(version: int, path: str, media_options: Mapping[str, Any]) -> ServedVersion:
    """Loads, sets up raw media for (`media_options`: `MediaFrontEnd`'s keyword arguments) and
    warms up one version directory.

    Raises:
        VersionLoadError: saying why the version cannot be served.
    """
    try:
        contents = fingerprint(path)
        loaded = tf.saved_model.load(path)
        signatures = dict(loaded.signatures)
        recorded = media_inputs.read_extraction(path)
    except Exception as error:  # a corrupt or half-copied SavedModel: refused, whatever broke
        raise VersionLoadError(f"cannot be loaded: {type(error).__name__}: {str(error).strip()[:500]}") from error
    if recorded is None:
        front_end, refusal = None, (
            f"Raw media cannot be served by version {version}: it records no feature extraction settings "
            "(its training data was not extracted from media by mmin_tf)")
    else:
        try:
            front_end, refusal = media_inputs.MediaFrontEnd(recorded, **media_options), None
        except ValueError as error:
            raise VersionLoadError(f"its raw-media front end cannot be built: {error}") from error
    count = warm_up(path, signatures)
    logging.info("Version %d of %s loaded and warmed up with %d requests", version, os.path.dirname(path), count)
    return ServedVersion(version, path, contents, types.MappingProxyType(signatures), front_end, refusal, loaded)


class VersionWatcher:
    """Keeps `current` on the newest servable version of `model_base_path` (module docstring).

    Args:
        model_base_path: TF Serving's layout, `<base>/<version>/`.
        load: `(version, path) -> ServedVersion`, raising `VersionLoadError` to refuse it.
    """

    def __init__(self, model_base_path: str, load: Callable[[int, str], ServedVersion]):
        self.model_base_path = model_base_path
        self._load = load
        self._current: Optional[ServedVersion] = None
        self._refused: dict[int, tuple[tuple, str]] = {}  # version -> (fingerprint, why)
        self._lock = threading.Lock()  # one poll at a time; requests never take it

    @property
    def current(self) -> Optional[ServedVersion]:
        """The version serving now (None when there is none): read it once per request."""
        return self._current

    def refusals(self) -> dict[int, str]:
        """Version -> why it was refused, for the refused versions still on disk."""
        return {version: why for version, (_, why) in self._refused.items()}

    def poll(self) -> Optional[ServedVersion]:
        """Looks at the base path once, loads and swaps in a newer version if there is one;
        returns the version serving afterwards."""
        with self._lock:
            found = complete_versions(self.model_base_path)
            self._refused = {version: entry for version, entry in self._refused.items() if version in found}
            current = self._current
            for version in sorted(found, reverse=True):
                try:
                    contents = fingerprint(found[version])
                except FileNotFoundError:  # removed while being looked at
                    continue
                if current is not None and (current.version, current.fingerprint) == (version, contents):
                    return current  # the newest servable version is already serving
                refused = self._refused.get(version)
                if refused is not None and refused[0] == contents:
                    continue
                try:
                    candidate = self._load(version, found[version])
                except VersionLoadError as error:
                    self._refused[version] = (contents, str(error))
                    logging.error("Version %d of %s is refused: %s", version, self.model_base_path, error)
                    continue
                self._current = candidate
                if current is None:
                    logging.info("Serving version %d of %s", version, self.model_base_path)
                else:
                    logging.info("Serving version %d of %s (was %d)", version, self.model_base_path, current.version)
                return candidate
            if current is not None:
                logging.error("No servable version under %s any more (version %d is gone or refused); not ready",
                              self.model_base_path, current.version)
            self._current = None
            return None
