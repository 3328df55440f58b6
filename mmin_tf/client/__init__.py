"""A small client for the served MMIN over TF Serving's REST predict API.

    from mmin_tf import client
    payload = client.instances_payload([{"acoustic": a, "text": t}], modalities)  # no visual
    response = client.predict("http://localhost:8501/v1/models/mmin:predict", payload)

Examples are dicts from modality name to a `(time, dim)` array; a modality that is absent (or
None) is sent as missing (length 0). TF Serving's row format ("instances") needs equal shapes
across a request, so every modality is zero-padded to the longest example of the request; the
lengths say what is real. The columnar format ("inputs") carries the same tensors.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Mapping, Optional, Sequence

import numpy as np

from mmin_tf import modalities as modalities_lib

Example = Mapping[str, Optional[np.ndarray]]


def batch_tensors(examples: Sequence[Example], modalities: Sequence[modalities_lib.ModalitySpec]) -> dict:
    """`{name: (batch, time, dim) float32, name_length: (batch,) int32}` for the signature."""
    if not examples:
        raise ValueError("A request needs at least one example")
    known = {spec.name for spec in modalities}
    tensors = {}
    for index, example in enumerate(examples):
        unknown = sorted(set(example) - known)
        if unknown:
            raise ValueError(f"Example {index} has unknown modalities {unknown}; known: {sorted(known)}")
        for spec in modalities:
            array = example.get(spec.name)
            if array is not None and (np.ndim(array) != 2 or np.shape(array)[1] != spec.feature_dim):
                raise ValueError(
                    f"Example {index}: {spec.name} must have shape (time, {spec.feature_dim}); "
                    f"received {np.shape(array)}"
                )
        if all(example.get(spec.name) is None or len(example[spec.name]) == 0 for spec in modalities):
            raise ValueError(f"Example {index} has no modality with frames; the model needs at least one")
    for spec in modalities:
        arrays = [example.get(spec.name) for example in examples]
        lengths = np.array([0 if array is None else len(array) for array in arrays], np.int32)
        features = np.zeros((len(examples), max(1, int(lengths.max())), spec.feature_dim), np.float32)
        for row, array in enumerate(arrays):
            if array is not None:
                features[row, : len(array)] = array
        tensors[spec.name] = features
        tensors[spec.length_key] = lengths
    return tensors


def instances_payload(examples: Sequence[Example], modalities, signature_name: str = "serving_default") -> dict:
    """TF Serving row format: `{"signature_name", "instances": [{input: value}, ...]}`."""
    tensors = batch_tensors(examples, modalities)
    instances = [{name: value[row].tolist() for name, value in tensors.items()} for row in range(len(examples))]
    return {"signature_name": signature_name, "instances": instances}


def inputs_payload(examples: Sequence[Example], modalities, signature_name: str = "serving_default") -> dict:
    """TF Serving columnar format: `{"signature_name", "inputs": {input: batched value}}`."""
    tensors = batch_tensors(examples, modalities)
    return {"signature_name": signature_name, "inputs": {name: value.tolist() for name, value in tensors.items()}}


def media_payload(media: Sequence[Mapping[str, object]]) -> dict:
    """Row format with raw media: each item may hold `audio` and `video` (file paths or bytes,
    sent as `{"b64": ...}`), `transcript` (a string), `start`, `end` (seconds) and `face_region`;
    what an item lacks is a missing modality."""
    instances = []
    for index, item in enumerate(media):
        unknown = sorted(set(item) - {"audio", "video", "transcript", "start", "end", "face_region"})
        if unknown:
            raise ValueError(f"Media item {index} has unknown fields {unknown}")
        instance = {}
        for field in ("audio", "video"):
            value = item.get(field)
            if value is None:
                continue
            if isinstance(value, str):
                with open(value, "rb") as f:
                    value = f.read()
            instance[field] = {"b64": base64.b64encode(value).decode("ascii")}
        instance.update({key: item[key] for key in ("transcript", "start", "end", "face_region") if item.get(key) is not None})
        if not any(field in instance for field in ("audio", "video", "transcript")):
            raise ValueError(f"Media item {index} has no audio, transcript or video")
        instances.append(instance)
    if not instances:
        raise ValueError("A request needs at least one item")
    return {"instances": instances}


class PredictError(RuntimeError):
    """The server answered with an error (its message is kept)."""


def predict(url: str, payload: dict, timeout: float = 30.0) -> dict:
    """POSTs `payload` to a `:predict` URL and returns the decoded JSON response.

    Raises:
        PredictError: with the server's `error` message on an HTTP error status.
    """
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode("utf-8"), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        body = error.read().decode("utf-8", "replace")
        try:
            message = json.loads(body).get("error", body)
        except json.JSONDecodeError:
            message = body
        raise PredictError(f"{url} answered {error.code}: {message}") from None
