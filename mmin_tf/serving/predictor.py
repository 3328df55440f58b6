"""A KServe model that answers TF Serving REST predict requests from an exported SavedModel.

TF Serving itself is not installable from the registries we reach; KServe's Python model server
speaks the same V1 REST protocol (`POST /v1/models/<name>:predict`), so the same clients and
payloads work against both. Supported: row format (`instances`) and columnar format (`inputs`),
`signature_name` (`serving_default` or `serve_examples`), and `{"b64": ...}` for string inputs.
Malformed requests are refused with a message (`payloads`).

Versions: as TF Serving, the newest complete version under the model base path serves, and a
watcher (`watch`, or `poll` called by hand) loads and warms up newer ones before they take
traffic (`versions`). Each request is pinned to one immutable `versions.ServedVersion` when it
arrives (in `preprocess`), and the answer names it: the `x-model-version` response header.

Raw media: instances holding `audio` / `video` (`{"b64": ...}` file bytes) and `transcript` (a
string), any of them absent, are turned into features by KServe's pre-processing hook
(`preprocess`, in this process: the way a KServe transformer is structured, without a second
server and without sending the features over the network) with the extractors the model's
training data was made with (`media_inputs.MediaFrontEnd`, one per version); each prediction
then says which modalities were missing and why (`missing_modalities`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import math
import threading
from typing import Optional

import kserve
import orjson
import tensorflow as tf
from absl import logging
from kserve.errors import InvalidInput, ModelNotReady

from mmin_tf.export import saved_model
from mmin_tf.serving import batching as batching_lib
from mmin_tf.serving import media_inputs, payloads, versions

VERSION_HEADER = "x-model-version"


@dataclasses.dataclass(frozen=True)
class PinnedRequest:
    """A request after `preprocess`: the version that answers it and what it asks.

    Attributes:
        version: the `ServedVersion` read when the request arrived.
        payload: the request body (for raw media: `serving_default` inputs made from them).
        missing_modalities: raw media only: per instance, the modalities it lacks and why.
    """

    version: versions.ServedVersion
    payload: object
    missing_modalities: Optional[list] = None


def _media_request(index: int, instance: dict) -> media_inputs.MediaRequest:
    """A raw-media instance (`audio`/`video` as `{"b64": ...}`, `transcript` a string, optional
    `start`, `end`, `face_region`) as a `MediaRequest`."""
    where = f"instances[{index}]"
    known = set(media_inputs.MEDIA_FIELDS) | {"start", "end", "face_region"}
    unknown = sorted(str(key) for key in set(instance) - known)
    if unknown:
        raise media_inputs.MediaInputError(
            f"{where}: unknown fields {unknown}; a raw-media instance has {sorted(known)}")
    fields = {}
    for field in (media_inputs.AUDIO, media_inputs.VIDEO):
        value = instance.get(field)
        if value is None:
            continue
        if not (isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str)):
            raise media_inputs.MediaInputError(f"{where}.{field} must be {{\"b64\": <base64 of the file>}}")
        try:
            fields[field] = base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise media_inputs.MediaInputError(f"{where}.{field}.b64 is not valid base64") from None
    transcript = instance.get(media_inputs.TRANSCRIPT)
    if transcript is not None and not isinstance(transcript, str):
        raise media_inputs.MediaInputError(f"{where}.transcript must be a string")
    for field in ("start", "end"):
        value = instance.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            raise media_inputs.MediaInputError(f"{where}.{field} must be a finite number of seconds")
        fields[field] = None if value is None else float(value)
    region = instance.get("face_region")
    if region is not None and not isinstance(region, str):
        raise media_inputs.MediaInputError(f"{where}.face_region must be a string left:top:right:bottom")
    return media_inputs.MediaRequest(transcript=transcript, face_region=region, **fields)


def _is_media_request(payload) -> bool:
    instances = payload.get("instances") if isinstance(payload, dict) else None
    return isinstance(instances, list) and bool(instances) and all(
        isinstance(i, dict) and set(i) & set(media_inputs.MEDIA_FIELDS) for i in instances)


class SavedModelPredictor(kserve.Model):
    """Serves the newest servable version under `model_base_path` under `name`.

    Loads it when made (the newest version that loads and warms up; `FileNotFoundError` when none
    does); `watch(poll_seconds)` then follows the base path (see `versions`).

    Args:
        name: the model's name in the URL.
        model_base_path: TF Serving's layout, `<base>/<version>/`.
        bert_preset, face_model: the text and face models for raw-media requests (each must be
            the file the training features were made with); without them, raw media of that
            kind are refused.
        media_limits: what a raw-media request may hold.
    """

    def __init__(self, name: str, model_base_path: str, bert_preset: Optional[str] = None,
                 face_model: Optional[str] = None, media_limits: media_inputs.MediaLimits = media_inputs.MediaLimits()):
        super().__init__(name, return_response_headers=True)
        self.model_base_path = model_base_path
        self.media_options = dict(bert_preset=bert_preset, face_model=face_model, limits=media_limits)
        self.watcher = versions.VersionWatcher(
            model_base_path, lambda version, path: versions.load_version(version, path, self.media_options))
        self._stop_watching = threading.Event()
        self._watch_thread: Optional[threading.Thread] = None
        self.load()

    @property
    def served(self) -> Optional[versions.ServedVersion]:
        """The version answering new requests now (None: none is servable)."""
        return self.watcher.current

    def load(self) -> bool:
        if self.poll() is None:
            refusals = "; ".join(f"version {v}: {why}" for v, why in sorted(self.watcher.refusals().items()))
            raise FileNotFoundError(
                f"No servable SavedModel version (1, 2, ... holding saved_model.pb) under {self.model_base_path!r}"
                + (f" ({refusals})" if refusals else ""))
        return self.ready

    def poll(self) -> Optional[versions.ServedVersion]:
        """Looks for a newer (or a removed) version once; returns the one serving afterwards."""
        served = self.watcher.poll()
        self.ready = served is not None
        return served

    def watch(self, poll_seconds: float) -> None:
        """Polls the base path every `poll_seconds` in a daemon thread until `stop()`."""
        if poll_seconds <= 0 or self._watch_thread is not None:
            return

        def run():
            while not self._stop_watching.wait(poll_seconds):
                try:
                    self.poll()
                except Exception:  # a poll that breaks (e.g. an unreadable base path) must not end the watching
                    logging.exception("Polling %s failed; polling again in %s s", self.model_base_path, poll_seconds)

        self._watch_thread = threading.Thread(target=run, name=f"watch-{self.name}", daemon=True)
        self._watch_thread.start()

    def stop(self):
        self._stop_watching.set()
        if self._watch_thread is not None:
            self._watch_thread.join()
            self._watch_thread = None
        super().stop()

    def _pin(self) -> versions.ServedVersion:
        served = self.watcher.current
        if served is None:
            raise ModelNotReady(self.name, f"No servable version under {self.model_base_path!r}")
        return served

    def preprocess(self, payload, headers=None) -> PinnedRequest:
        """Pins the request to the version serving now; raw-media instances -> `serving_default`
        inputs made by that version's front end (see the module docstring)."""
        served = self._pin()
        if isinstance(payload, (bytes, bytearray)):  # KServe parses only application/json bodies; TF Serving any
            try:
                payload = orjson.loads(payload)
            except orjson.JSONDecodeError as error:
                raise InvalidInput(f"The request body is not JSON: {error}") from None
        if not _is_media_request(payload):
            return PinnedRequest(served, payload)
        if served.front_end is None:
            raise InvalidInput(served.front_end_refusal)
        try:
            requests = [_media_request(index, instance) for index, instance in enumerate(payload["instances"])]
            inputs, missing = served.front_end.inputs(requests)
        except media_inputs.MediaInputError as error:
            raise InvalidInput(str(error)) from None
        return PinnedRequest(served, {"signature_name": saved_model.SERVING_SIGNATURE, "inputs": inputs}, missing)

    def predict(self, payload, headers=None, response_headers=None):
        """Answers a `PinnedRequest` (or a request body, pinned now); names the version that
        answered in `response_headers[VERSION_HEADER]`."""
        request = payload if isinstance(payload, PinnedRequest) else self.preprocess(payload)
        name, arrays, row_format = self.checked_inputs(request)
        try:
            outputs = self._call(request.version.signatures[name], arrays)
        except tf.errors.InvalidArgumentError as error:
            raise InvalidInput(payloads.tf_error_message(error.message)) from None
        return self._respond(request, outputs, row_format, response_headers)

    def checked_inputs(self, request: PinnedRequest) -> tuple[str, dict, bool]:
        """The signature name, the checked input arrays and whether the answer is in row format."""
        served, payload = request.version, request.payload
        try:
            if not isinstance(payload, dict):
                raise payloads.PayloadError(
                    f"The request body must be a JSON object; received {payloads.quote(payload)}")
            name = payloads.signature_name(payload, served.signatures)
            named, row_format = payloads.columns(payload, served.signatures[name])
            modalities = payloads.feature_inputs(served.signatures)
            arrays = payloads.tensors(served.signatures[name], named, modalities)
            if name == saved_model.EXAMPLES_SIGNATURE:
                payloads.check_examples(arrays["examples"], modalities)
        except payloads.PayloadError as error:
            raise InvalidInput(str(error)) from None
        return name, arrays, row_format

    @staticmethod
    def _call(signature, arrays: dict) -> dict:
        outputs = signature(**{key: tf.constant(value) for key, value in arrays.items()})
        return {key: value.numpy() for key, value in outputs.items()}

    @staticmethod
    def _respond(request: PinnedRequest, outputs: dict, row_format: bool, response_headers) -> dict:
        if request.missing_modalities is not None:  # raw media: answered in row format
            rows = payloads.response(outputs, True)["predictions"]
            response = {"predictions": [{**prediction, "missing_modalities": reasons}
                                        for prediction, reasons in zip(rows, request.missing_modalities)]}
        else:
            response = payloads.response(outputs, row_format)
        if response_headers is not None:
            response_headers[VERSION_HEADER] = str(request.version.version)
        return response


class BatchingPredictor(SavedModelPredictor):
    """`SavedModelPredictor` that merges concurrent `serving_default` requests into one model call
    (`batching`; the server's `--enable_batching`). Its `predict` is a coroutine: the event loop
    reads and checks the next requests while a batch runs. Other signatures run in a thread.

    Args:
        batching: `batching.BatchingOptions`.
        **kwargs: as `SavedModelPredictor`'s.
    """

    def __init__(self, name: str, model_base_path: str,
                 batching: batching_lib.BatchingOptions = batching_lib.BatchingOptions(), **kwargs):
        super().__init__(name, model_base_path, **kwargs)
        self.batcher = batching_lib.Batcher(batching)

    async def predict(self, payload, headers=None, response_headers=None):
        request = payload if isinstance(payload, PinnedRequest) else self.preprocess(payload)
        name, arrays, row_format = self.checked_inputs(request)
        try:
            if name == saved_model.SERVING_SIGNATURE:
                try:
                    payloads.check_lengths(arrays, payloads.feature_inputs(request.version.signatures))
                except payloads.PayloadError as error:
                    raise InvalidInput(str(error)) from None
                outputs = await asyncio.wrap_future(self.batcher.submit(request.version, arrays))
            else:
                outputs = await asyncio.get_running_loop().run_in_executor(
                    None, self._call, request.version.signatures[name], arrays)
        except tf.errors.InvalidArgumentError as error:
            raise InvalidInput(payloads.tf_error_message(error.message)) from None
        return self._respond(request, outputs, row_format, response_headers)

    def stop(self):
        self.batcher.stop()
        super().stop()
