"""A KServe model that answers TF Serving REST predict requests from an exported SavedModel.

TF Serving itself is not installable from the registries we reach; KServe's Python model server
speaks the same V1 REST protocol (`POST /v1/models/<name>:predict`), so the same clients and
payloads work against both. Supported: row format (`instances`) and columnar format (`inputs`),
`signature_name` (`serving_default` or `serve_examples`), and `{"b64": ...}` for string inputs.
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


def _error_message(message: str) -> str:
    """The informative line of a TF runtime error (the failed assertion, when there is one)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in lines:
        if "assertion failed" in line or "must be" in line or "exceeds" in line:
            return line
    return lines[0] if lines else message


class SavedModelPredictor(kserve.Model):
    """Serves the newest version under `model_base_path` under `name`."""

    def __init__(self, name: str, model_base_path: str):
        super().__init__(name)
        self.model_base_path = model_base_path
        self.version_dir: Optional[str] = None
        self.signatures = {}
        self.load()

    def load(self) -> bool:
        self.version_dir = latest_version(self.model_base_path)
        self._saved_model = tf.saved_model.load(self.version_dir)
        self.signatures = dict(self._saved_model.signatures)
        self.ready = True
        return self.ready

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
