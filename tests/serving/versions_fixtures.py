"""Version directories made for the serving tests (good, corrupt, failing warm-up) and a thread
that sends requests without pause, recording which version answered each."""

from __future__ import annotations

import os
import shutil
import threading
import time

import numpy as np
import tensorflow as tf

from mmin_tf import client
from mmin_tf.export import saved_model
from tests import tiny_runs


def install(source: str, base: str, version: int, change=None) -> str:
    """Copies the version directory `source` to `base/<version>`, written under a hidden name and
    renamed into place (as the exporter does); `change(path)` edits the copy before the rename."""
    final = os.path.join(base, str(version))
    temporary = os.path.join(base, f".{version}.copying")
    shutil.copytree(source, temporary)
    if change is not None:
        change(temporary)
    os.rename(temporary, final)
    return final


def base_with_version(source: str, directory) -> str:
    """A new model base path `directory/mmin` holding a copy of the version directory `source` as version 1."""
    base = os.path.join(str(directory), "mmin")
    os.makedirs(base)
    install(source, base, 1)
    return base


def corrupt_saved_model(path: str) -> None:
    with open(os.path.join(path, "saved_model.pb"), "wb") as f:
        f.write(b"\x08\x01 this is not a SavedModel protocol buffer \xff\xfe")


def refused_warmup(path: str) -> None:
    """A warm-up file whose one request has no modality at all: the model refuses it."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="mmin", signature_name="serving_default"))
    for spec in tiny_runs.MODALITIES:
        request.inputs[spec.name].CopyFrom(tf.make_tensor_proto(np.zeros((1, 1, spec.feature_dim), np.float32)))
        request.inputs[spec.length_key].CopyFrom(tf.make_tensor_proto(np.zeros([1], np.int32)))
    log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
    with tf.io.TFRecordWriter(os.path.join(path, saved_model.WARMUP_FILE)) as writer:
        writer.write(log.SerializeToString())


def payload(seed: int = 0, batch: int = 2) -> dict:
    """A valid columnar `serving_default` request for the tiny model (`tiny_runs.MODALITIES`)."""
    rng = np.random.default_rng(seed)
    examples = [{spec.name: rng.normal(size=(int(rng.integers(1, 6)), spec.feature_dim))
                 for spec in tiny_runs.MODALITIES} for _ in range(batch)]
    return client.inputs_payload(examples, tiny_runs.MODALITIES)


class Traffic:
    """Calls `send()` (returning the answering version as a string, raising on failure) in a
    thread until stopped; records the versions in order and every failure."""

    def __init__(self, send):
        self._send = send
        self.versions: list[str] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.versions.append(self._send())
            except Exception as error:  # every failure is a test failure, recorded
                self.errors.append(f"{type(error).__name__}: {error}")

    def wait_for(self, version: str, timeout: float = 60.0) -> None:
        """Until a request after this call is answered by `version`."""
        start, deadline = len(self.versions), time.monotonic() + timeout
        while version not in self.versions[start:]:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise AssertionError(f"No answer from version {version} within {timeout} s; last: "
                                     f"{self.versions[-5:]}, errors: {self.errors[:3]}")
            time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=60)
