"""A KServe model that answers TF Serving REST predict requests from an exported SavedModel.

TF Serving itself is not installable from the registries we reach; KServe's Python model server
speaks the same V1 REST protocol (`POST /v1/models/<name>:predict`), so the same clients and
payloads work against both. Supported: row format (`instances`) and columnar format (`inputs`),
`signature_name` (`serving_default` or `serve_examples`), and `{"b64": ...}` for string inputs.

Raw media: instances holding `audio` / `video` (`{"b64": ...}` file bytes) and `transcript` (a
string), any of them absent, are turned into features by KServe's pre-processing hook
(`preprocess`, in this process: the way a KServe transformer is structured, without a second
server and without sending the features over the network) with the extractors the model's
training data was made with (`media_inputs.MediaFrontEnd`); each prediction then says which
modalities were missing and why (`missing_modalities`).
"""

from __future__ import annotations

import base64
import os
from typing import Optional

import kserve
import numpy as np
import tensorflow as tf
from kserve.errors import InvalidInput

from mmin_tf.export import saved_model
from mmin_tf.serving import media_inputs


def latest_version(model_base_path: str) -> str:
    """The highest integer version directory under `model_base_path`, as TF Serving picks."""
    found = saved_model.versions(model_base_path)
    if not found:
        raise FileNotFoundError(f"No SavedModel version directory (1, 2, ...) under {model_base_path!r}")
    return os.path.join(model_base_path, str(max(found)))


def _decode_strings(value):
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_decode_strings(item) for item in value]
    return value.encode("utf-8") if isinstance(value, str) else value


def _to_json(value: np.ndarray):
    if value.dtype == object:
        return [item.decode("utf-8") if isinstance(item, bytes) else item for item in value.tolist()]
    return value.tolist()


_MISSING = "_mmin_tf_missing_modalities"  # preprocess -> predict: why each raw-media instance lacks modalities
_ROWS = "_mmin_tf_raw_media"


def _media_request(index: int, instance: dict) -> media_inputs.MediaRequest:
    """A raw-media instance (`audio`/`video` as `{"b64": ...}`, `transcript` a string, optional
    `start`, `end`, `face_region`) as a `MediaRequest`."""
    where = f"instances[{index}]"
    known = set(media_inputs.MEDIA_FIELDS) | {"start", "end", "face_region"}
    unknown = sorted(set(instance) - known)
    if unknown:
        raise media_inputs.MediaInputError(f"{where}: unknown fields {unknown}; a raw-media instance has {sorted(known)}")
    fields = {}
    for field in (media_inputs.AUDIO, media_inputs.VIDEO):
        value = instance.get(field)
        if value is None:
            continue
        if not (isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str)):
            raise media_inputs.MediaInputError(f"{where}.{field} must be {{\"b64\": <base64 of the file>}}")
        try:
            fields[field] = base64.b64decode(value["b64"], validate=True)
        except ValueError:
            raise media_inputs.MediaInputError(f"{where}.{field}.b64 is not valid base64") from None
    transcript = instance.get(media_inputs.TRANSCRIPT)
    if transcript is not None and not isinstance(transcript, str):
        raise media_inputs.MediaInputError(f"{where}.transcript must be a string")
    for field in ("start", "end"):
        value = instance.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise media_inputs.MediaInputError(f"{where}.{field} must be a number of seconds")
        fields[field] = None if value is None else float(value)
    region = instance.get("face_region")
    if region is not None and not isinstance(region, str):
        raise media_inputs.MediaInputError(f"{where}.face_region must be a string left:top:right:bottom")
    return media_inputs.MediaRequest(transcript=transcript, face_region=region, **fields)


def _error_message(message: str) -> str:
    """The informative line of a TF runtime error (the failed assertion, when there is one)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in lines:
        if "assertion failed" in line or "must be" in line or "exceeds" in line:
            return line
    return lines[0] if lines else message


class SavedModelPredictor(kserve.Model):
    """Serves the newest version under `model_base_path` under `name`.

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
        super().__init__(name)
        self.model_base_path = model_base_path
        self.version_dir: Optional[str] = None
        self.signatures = {}
        self.media_options = dict(bert_preset=bert_preset, face_model=face_model, limits=media_limits)
        self.front_end: Optional[media_inputs.MediaFrontEnd] = None
        self.front_end_refusal = "raw media are not set up"
        self.load()

    def load(self) -> bool:
        self.version_dir = latest_version(self.model_base_path)
        self._saved_model = tf.saved_model.load(self.version_dir)
        self.signatures = dict(self._saved_model.signatures)
        recorded = media_inputs.read_extraction(self.version_dir)
        if recorded is None:
            self.front_end, self.front_end_refusal = None, (
                f"Raw media cannot be served by {self.version_dir!r}: it records no feature extraction settings "
                "(its training data was not extracted from media by mmin_tf)")
        else:
            self.front_end = media_inputs.MediaFrontEnd(recorded, **self.media_options)
        self.ready = True
        return self.ready

    def preprocess(self, payload, headers=None):
        """Raw-media instances -> `serving_default` inputs (see the module docstring); any other
        payload passes through unchanged."""
        instances = payload.get("instances") if isinstance(payload, dict) else None
        if not (isinstance(instances, list) and instances and all(
                isinstance(i, dict) and set(i) & set(media_inputs.MEDIA_FIELDS) for i in instances)):
            return payload
        if self.front_end is None:
            raise InvalidInput(self.front_end_refusal)
        try:
            requests = [_media_request(index, instance) for index, instance in enumerate(instances)]
            inputs, missing = self.front_end.inputs(requests)
        except media_inputs.MediaInputError as error:
            raise InvalidInput(str(error)) from None
        return {"signature_name": saved_model.SERVING_SIGNATURE, "inputs": inputs, _MISSING: missing, _ROWS: True}

    def _tensors(self, signature, columns: dict) -> dict:
        specs = signature.structured_input_signature[1]
        missing = sorted(set(specs) - set(columns))
        unknown = sorted(set(columns) - set(specs))
        if missing or unknown:
            raise InvalidInput(f"Inputs must be {sorted(specs)}; missing {missing}, unknown {unknown}")
        tensors = {}
        for name, spec in specs.items():
            value = columns[name]
            if spec.dtype == tf.string:
                value = _decode_strings(value)
            try:
                tensors[name] = tf.constant(value, dtype=spec.dtype)
            except (ValueError, TypeError) as error:
                raise InvalidInput(f"Input {name!r}: {error}") from None
            if not spec.shape.is_compatible_with(tensors[name].shape):
                raise InvalidInput(f"Input {name!r} must have shape {spec.shape}; received {tensors[name].shape}")
        return tensors

    def predict(self, payload, headers=None):
        if not isinstance(payload, dict):
            raise InvalidInput("The request body must be a JSON object")
        missing = payload.pop(_MISSING, None)
        if payload.pop(_ROWS, False):  # raw media: features computed here, answered in row format
            response = self._predict(payload)["outputs"]
            predictions = [{key: value[row] for key, value in response.items()} for row in range(len(missing))]
            for prediction, reasons in zip(predictions, missing):
                prediction["missing_modalities"] = reasons
            return {"predictions": predictions}
        return self._predict(payload)

    def _predict(self, payload):
        name = payload.get("signature_name", "serving_default")
        if name not in self.signatures:
            raise InvalidInput(f"Unknown signature_name {name!r}; available: {sorted(self.signatures)}")
        signature = self.signatures[name]
        input_names = list(signature.structured_input_signature[1])
        if "instances" in payload:
            instances = payload["instances"]
            if not isinstance(instances, list) or not instances:
                raise InvalidInput("'instances' must be a non-empty list")
            if len(input_names) == 1 and not all(isinstance(i, dict) and input_names[0] in i for i in instances):
                instances = [{input_names[0]: instance} for instance in instances]
            if not all(isinstance(instance, dict) for instance in instances):
                raise InvalidInput("Each instance must be an object of named inputs")
            columns = {key: [instance.get(key) for instance in instances] for key in instances[0]}
        elif "inputs" in payload:
            columns = payload["inputs"]
            if len(input_names) == 1 and not isinstance(columns, dict):
                columns = {input_names[0]: columns}
        else:
            raise InvalidInput("The request needs 'instances' (row format) or 'inputs' (columnar format)")
        try:
            outputs = signature(**self._tensors(signature, columns))
        except tf.errors.InvalidArgumentError as error:
            raise InvalidInput(_error_message(error.message)) from None
        outputs = {key: value.numpy() for key, value in outputs.items()}
        if "instances" in payload:
            count = len(next(iter(outputs.values())))
            return {"predictions": [{key: _to_json(value[row : row + 1])[0] for key, value in outputs.items()} for row in range(count)]}
        return {"outputs": {key: _to_json(value) for key, value in outputs.items()}}
