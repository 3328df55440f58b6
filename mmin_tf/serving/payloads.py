"""TF Serving REST predict payloads -> signature inputs and outputs -> JSON, checked on the way in.

Every way a request can be malformed ends here as a `PayloadError` whose message says what was
expected and what was received (the server answers it with HTTP 400): a body that is not an
object, a `signature_name` that is not one of the model's, neither or both of `instances` and
`inputs`, instances with different inputs, missing or unknown inputs, values that are not numbers
(or, for string inputs, strings or `{"b64": ...}` with valid base64), ragged arrays, wrong ranks or
widths, batch sizes that differ between inputs, integers outside int32, and NaN, Inf or values
beyond float32 in the frames an example's lengths cover. Serialized examples (`serve_examples`)
are parsed here as the model parses them, so that a record that is not a `SequenceExample`, a
feature list of the wrong width and non-finite frames are named too. Nothing in a request is used
as a path, a command or anything but a key compared with the model's own names.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
import reprlib
from typing import Any, Mapping

import numpy as np
import tensorflow as tf

from mmin_tf.data import format as format_lib
from mmin_tf.export.saved_model import NO_MODALITY_MESSAGE, SERVING_SIGNATURE

LENGTH_SUFFIX = "_length"
_INT32 = np.iinfo(np.int32)
_QUOTE = reprlib.Repr()  # short quotes of request values (Python 3.11's Repr takes no arguments)
_QUOTE.maxlevel, _QUOTE.maxlist, _QUOTE.maxdict, _QUOTE.maxstring, _QUOTE.maxother = 3, 4, 4, 40, 40
_NOISE = ("Graph execution error", "Detected at node", "<stack traces unavailable>")
_TF_TAGS = re.compile(r"\{\{function_node [^}]*\}\}|\[\[\{\{node [^}]*\}\}\]\]|\[Op:[^\]]*\]")


class PayloadError(ValueError):
    """A request that cannot be answered; the message names the field and the problem."""


@dataclasses.dataclass(frozen=True)
class FeatureInput:
    """One modality of the `serving_default` signature: `name` (float, `(batch, time, dim)`) and
    `name_length` (int32, `(batch,)`). Has the attributes `format.parse_sequence_examples` reads."""

    name: str
    feature_dim: int

    @property
    def length_key(self) -> str:
        return self.name + LENGTH_SUFFIX


def feature_inputs(signatures: Mapping[str, Any]) -> tuple[FeatureInput, ...]:
    """The modalities of a version's `serving_default` signature (empty without one), in name order."""
    if SERVING_SIGNATURE not in signatures:
        return ()
    specs = signatures[SERVING_SIGNATURE].structured_input_signature[1]
    return tuple(
        FeatureInput(name, int(spec.shape[-1])) for name, spec in sorted(specs.items())
        if name + LENGTH_SUFFIX in specs and spec.shape.rank == 3 and spec.shape[-1] is not None)


def tf_error_message(message: str) -> str:
    """The informative line of a TF runtime error (the failed assertion, when there is one),
    without TF's node names and op tags."""
    lines = [_TF_TAGS.sub("", line).strip() for line in message.splitlines()]
    lines = [line for line in lines if line and not line.startswith(_NOISE)]
    for line in lines:
        if "assertion failed" in line or "must be" in line or "exceeds" in line:
            return line
    return lines[0] if lines else message.strip()


def signature_name(payload: Mapping, signatures: Mapping[str, Any]) -> str:
    name = payload.get("signature_name", SERVING_SIGNATURE)
    if not isinstance(name, str) or name not in signatures:
        raise PayloadError(f"Unknown signature_name {quote(name)}; available: {sorted(signatures)}")
    return name


def columns(payload: Mapping, signature) -> tuple[dict, bool]:
    """The request's inputs by name (columnar) and whether it came in row format (`instances`)."""
    input_names = list(signature.structured_input_signature[1])
    if ("instances" in payload) == ("inputs" in payload):
        raise PayloadError("The request needs exactly one of 'instances' (row format) and 'inputs' (columnar format)")
    if "instances" in payload:
        instances = payload["instances"]
        if not isinstance(instances, list) or not instances:
            raise PayloadError(f"'instances' must be a non-empty list; received {quote(instances)}")
        if len(input_names) == 1 and not all(isinstance(i, dict) and input_names[0] in i for i in instances):
            instances = [{input_names[0]: instance} for instance in instances]
        for index, instance in enumerate(instances):
            if not isinstance(instance, dict):
                raise PayloadError(f"instances[{index}] must be an object of named inputs; received {quote(instance)}")
            if set(instance) != set(instances[0]):
                raise PayloadError(
                    f"instances[{index}] has inputs {sorted(instance)}; instances[0] has {sorted(instances[0])}: "
                    "every instance names the same inputs")
        return {key: [instance[key] for instance in instances] for key in instances[0]}, True
    named = payload["inputs"]
    if len(input_names) == 1 and not isinstance(named, dict):
        named = {input_names[0]: named}
    if not isinstance(named, dict):
        raise PayloadError(f"'inputs' must be an object of named inputs; received {quote(named)}")
    return dict(named), False


def tensors(signature, named: Mapping, modalities: tuple[FeatureInput, ...]) -> dict[str, np.ndarray]:
    """The signature's inputs as numpy arrays, checked (see the module docstring)."""
    specs = signature.structured_input_signature[1]
    missing = sorted(set(specs) - set(named))
    unknown = sorted(str(key) for key in set(named) - set(specs))
    if missing or unknown:
        raise PayloadError(f"Inputs must be {sorted(specs)}; missing {missing}, unknown {quote(unknown)}")
    arrays = {name: _array(name, named[name], spec) for name, spec in specs.items()}
    batch = {name: array.shape[0] for name, array in arrays.items() if array.ndim > 0}
    if len(set(batch.values())) > 1:
        raise PayloadError(f"Every input must have the same batch size (first dimension); received {batch}")
    for spec in modalities:
        if spec.name in arrays and spec.length_key in arrays:
            _check_frames(spec, arrays[spec.name], arrays[spec.length_key])
    return arrays


def check_lengths(arrays: Mapping[str, np.ndarray], modalities: tuple[FeatureInput, ...]) -> None:
    """The model's own checks of `serving_default` lengths, in numpy, with its messages: needed
    before requests are merged (`batching`), where the model would see the padded time."""
    present = np.zeros(len(arrays[modalities[0].length_key]), bool)
    for spec in modalities:
        lengths = arrays[spec.length_key]
        if np.any(lengths < 0):
            raise PayloadError(f"{spec.length_key} must be >= 0; received {lengths.tolist()[:10]}")
        if np.any(lengths > arrays[spec.name].shape[1]):
            raise PayloadError(
                f"{spec.length_key} exceeds the time dimension of {spec.name} ({arrays[spec.name].shape[1]}); "
                f"received {lengths.tolist()[:10]}")
        present |= lengths > 0
    if not np.all(present):
        raise PayloadError(f"Examples at batch positions {np.nonzero(~present)[0][:10].tolist()} {NO_MODALITY_MESSAGE}")


def check_examples(serialized: np.ndarray, modalities: tuple[FeatureInput, ...]) -> None:
    """Parses `serve_examples` input as the model does; raises `PayloadError` naming the first
    example that is not a SequenceExample of the model's widths, or has NaN or Inf frames."""
    try:
        parsed = format_lib.parse_sequence_examples(tf.constant(serialized, tf.string), modalities)
    except tf.errors.InvalidArgumentError as error:
        for index, record in enumerate(serialized):
            try:
                format_lib.parse_sequence_examples(tf.constant([record], tf.string), modalities)
            except tf.errors.InvalidArgumentError as single:
                raise PayloadError(
                    f"examples[{index}] is not a serialized tf.train.SequenceExample of the model's inputs "
                    f"({', '.join(f'{s.name}: {s.feature_dim} floats per frame' for s in modalities)}): "
                    f"{tf_error_message(single.message)}") from None
        raise PayloadError(tf_error_message(error.message)) from None
    for spec in modalities:
        _check_frames(spec, parsed[spec.name].numpy(), parsed[spec.length_key].numpy(), what="examples")


def to_json(value: np.ndarray):
    if value.dtype == object:
        return [item.decode("utf-8", "replace") if isinstance(item, bytes) else item for item in value.tolist()]
    return value.tolist()


def response(outputs: Mapping[str, np.ndarray], row_format: bool) -> dict:
    """TF Serving's answer: `predictions` (one object per example) or `outputs` (columns)."""
    if row_format:
        count = len(next(iter(outputs.values())))
        return {"predictions": [{key: to_json(value[row:row + 1])[0] for key, value in outputs.items()}
                                for row in range(count)]}
    return {"outputs": {key: to_json(value) for key, value in outputs.items()}}


def _array(name: str, value, spec: tf.TensorSpec) -> np.ndarray:
    ragged = PayloadError(f"Input {name!r} must be a rectangular array (every row the same length)")
    if spec.dtype == tf.string:
        strings = _strings(name, value, spec.shape.rank)
        try:
            array = np.array(strings, dtype=object)
        except ValueError:
            raise ragged from None
        if any(not isinstance(item, bytes) for item in array.reshape(-1)):
            raise ragged
    else:
        try:
            array = np.array(value)
        except (ValueError, TypeError, RecursionError):  # ragged or absurdly deep nesting
            raise ragged from None
        if array.dtype == object and all(type(item) is int for item in array.reshape(-1)):
            try:  # integers beyond 64 bits
                array = array.astype(np.float64)
            except OverflowError:
                array = np.full(array.shape, np.inf)
        if array.dtype.kind not in "iuf":
            raise PayloadError(f"Input {name!r} must hold {spec.dtype.name} numbers; received {quote(value)}")
        if spec.dtype.is_integer:
            if array.dtype.kind == "f" and not np.all(np.isfinite(array) & (array == np.round(array))):
                raise PayloadError(f"Input {name!r} must hold integers; received {quote(value)}")
            if array.size and (array.min() < _INT32.min or array.max() > _INT32.max):
                raise PayloadError(f"Input {name!r} holds values outside int32 [{_INT32.min}, {_INT32.max}]")
        with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: Inf, refused below
            array = array.astype(spec.dtype.as_numpy_dtype)
    if not spec.shape.is_compatible_with(array.shape):
        raise PayloadError(f"Input {name!r} must have shape {_shape(spec.shape)}; received {_shape(array.shape)}")
    return array


def _strings(name: str, value, depth: int):
    """Strings and `{"b64": ...}` -> bytes, in nested lists at most `depth` deep."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, list):
        if depth < 1:
            raise PayloadError(f"Input {name!r} is nested deeper than its shape")
        return [_strings(name, item, depth - 1) for item in value]
    if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise PayloadError(f"Input {name!r}: {quote(value)} is not valid base64") from None
    raise PayloadError(f"Input {name!r} must hold strings or {{\"b64\": <base64>}}; received {quote(value)}")


def _check_frames(spec: FeatureInput, features: np.ndarray, lengths: np.ndarray, what: str = "") -> None:
    """NaN or Inf in the frames the lengths cover (lengths out of range are left to the model,
    whose assertions name them)."""
    if features.ndim != 3 or lengths.shape != features.shape[:1] or np.all(np.isfinite(features)):
        return
    if lengths.size and (lengths.min() < 0 or lengths.max() > features.shape[1]):
        return
    valid = np.arange(features.shape[1])[None, :] < lengths[:, None]  # (B, T)
    bad = np.nonzero(np.any(~np.isfinite(features) & valid[:, :, None], axis=(1, 2)))[0]
    if bad.size:
        where = f"{what} at batch positions" if what else "at batch positions"
        raise PayloadError(
            f"Input {spec.name!r} holds NaN, Inf or values beyond float32 in the frames its length covers, "
            f"{where} {bad[:10].tolist()}")


def _shape(shape) -> str:
    return "[" + ", ".join("None" if dim is None else str(dim) for dim in tuple(shape)) + "]"


def quote(value) -> str:
    """A request value as a message may quote it: a short repr, whatever its size."""
    return _QUOTE.repr(value)
