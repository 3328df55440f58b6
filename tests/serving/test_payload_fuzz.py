"""Property-based tests of the REST predictor in process: whatever a request holds, the answer is
a well-formed prediction or an `InvalidInput` (HTTP 400) with a message, never another error, and
nothing in a request reaches the filesystem, a process or the shell."""

import base64
import copy
import math
import sys
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("kserve")

from kserve.errors import InvalidInput  # noqa: E402

from mmin_tf.data import format as format_lib  # noqa: E402
from mmin_tf.serving import media_inputs  # noqa: E402
from mmin_tf.serving.predictor import SavedModelPredictor, _media_request  # noqa: E402
from tests import tiny_runs  # noqa: E402
from tests.serving import versions_fixtures as fixtures  # noqa: E402

FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
NAMES = [spec.name for spec in tiny_runs.MODALITIES] + [spec.length_key for spec in tiny_runs.MODALITIES]

json_scalars = (st.none() | st.booleans() | st.integers(min_value=-2 ** 70, max_value=2 ** 70)
                | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=6))
json_values = st.recursive(json_scalars, lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(st.text(max_size=6), children, max_size=3), max_leaves=12)
dimensions = st.integers(min_value=-3, max_value=9) | st.sampled_from([2 ** 31, -2 ** 31 - 1, 2 ** 63, 10 ** 30])
floats = st.floats(allow_nan=True, allow_infinity=True, width=64) | st.sampled_from([1e39, -1e39, 1e-50])


@pytest.fixture(scope="module")
def predictor(exported, tmp_path_factory):
    return SavedModelPredictor("mmin", fixtures.base_with_version(exported, tmp_path_factory.mktemp("fuzz")))


def _answer(predictor, payload):
    """The predictor's answer, checked; None when it refused the request with a message."""
    headers = {}
    try:
        response = predictor.predict(predictor.preprocess(payload), response_headers=headers)
    except InvalidInput as error:
        assert str(error).strip(), "an InvalidInput without a message"
        return None
    assert headers["x-model-version"] == "1"
    rows = response["predictions"] if "predictions" in response else [
        dict(zip(response["outputs"], values)) for values in zip(*response["outputs"].values())]
    for row in rows:
        assert all(math.isfinite(p) for p in row["probabilities"]) and abs(sum(row["probabilities"]) - 1) < 1e-4
        assert row["condition"] and set(row["condition"]) <= set("avt")
    return response


def _still_serves(predictor):
    assert _answer(predictor, fixtures.payload()) is not None


@FUZZ
@given(payload=json_values)
def test_random_json_bodies(predictor, payload):
    _answer(predictor, payload)
    _still_serves(predictor)


@FUZZ
@given(data=st.data(), columnar=st.booleans())
def test_valid_requests_with_one_input_replaced(predictor, data, columnar):
    payload = fixtures.payload(seed=data.draw(st.integers(0, 3)), batch=data.draw(st.integers(1, 3)))
    name = data.draw(st.sampled_from(NAMES + ["extra"]))
    payload["inputs"][name] = data.draw(json_values)
    if data.draw(st.booleans()):
        del payload["inputs"][data.draw(st.sampled_from(NAMES))]
    if not columnar:
        inputs = payload.pop("inputs")
        try:
            rows = len(next(iter(v for v in inputs.values() if isinstance(v, list))))
        except StopIteration:
            rows = 1
        payload["instances"] = [{key: (value[row] if isinstance(value, list) and row < len(value) else value)
                                 for key, value in inputs.items()} for row in range(rows)]
    _answer(predictor, payload)
    _still_serves(predictor)


@FUZZ
@given(data=st.data())
def test_shapes_lengths_and_non_finite_values(predictor, data):
    """Random time axes and lengths (negative, beyond the time axis, beyond int32), NaN and Inf
    anywhere: answered exactly when the lengths are in range and the covered frames finite."""
    batch = data.draw(st.integers(1, 3))
    inputs, valid = {}, True
    present = np.zeros(batch, bool)
    wild = data.draw(st.sampled_from([None] + [spec.name for spec in tiny_runs.MODALITIES]))  # lengths anything
    for spec in tiny_runs.MODALITIES:
        time = data.draw(st.integers(1, 5))
        features = np.zeros((batch, time, spec.feature_dim))
        for _ in range(data.draw(st.integers(0, 2))):
            features[data.draw(st.integers(0, batch - 1)), data.draw(st.integers(0, time - 1)),
                     data.draw(st.integers(0, spec.feature_dim - 1))] = data.draw(floats)
        lengths = data.draw(st.lists(dimensions if spec.name == wild else st.integers(0, time),
                                     min_size=batch, max_size=batch))
        in_range = all(0 <= length <= time for length in lengths)
        valid &= in_range
        if in_range:
            present |= np.asarray(lengths) > 0
            covered = np.arange(time)[None, :] < np.asarray(lengths)[:, None]
            with np.errstate(over="ignore"):
                valid &= bool(np.all(np.isfinite(features.astype(np.float32)[covered])))
        inputs[spec.name], inputs[spec.length_key] = features.tolist(), lengths
    valid &= bool(np.all(present))
    response = _answer(predictor, {"inputs": inputs})
    assert (response is not None) == valid, (inputs, response)
    _still_serves(predictor)
    _outcomes.add(valid)


_outcomes = set()


def test_the_shapes_fuzz_saw_answered_and_refused_requests(predictor):
    _outcomes.clear()
    test_shapes_lengths_and_non_finite_values(predictor)  # the fuzz above, run again here (derandomized)
    assert _outcomes == {True, False}


@FUZZ
@given(name=st.text(max_size=20) | st.sampled_from(["../../etc/passwd", "serving_default ", "SERVE_EXAMPLES",
                                                    "$(touch /tmp/pwned)", "`id`", "", "\x00"]))
def test_signature_names(predictor, name):
    payload = fixtures.payload()
    payload["signature_name"] = name
    response = _answer(predictor, payload)
    assert (response is not None) == (name == "serving_default")


def _example(features):
    return format_lib.serialize_utterance(format_lib.Utterance("u", "s", "g", 0, features), tiny_runs.MODALITIES)


@FUZZ
@given(data=st.data())
def test_serialized_examples(predictor, data):
    """`serve_examples`: random bytes, base64 garbage, truncated and valid records, wrong widths,
    NaN frames; only the valid ones are answered."""
    kind = data.draw(st.sampled_from(["bytes", "text", "truncated", "valid", "wide", "nan", "absent"]))
    valid_record = _example({"acoustic": np.ones((2, 6), np.float32)})
    if kind == "bytes":
        value = {"b64": base64.b64encode(data.draw(st.binary(max_size=40))).decode()}
    elif kind == "text":
        value = {"b64": data.draw(st.text(max_size=20))}
    elif kind == "truncated":
        value = {"b64": base64.b64encode(valid_record[:data.draw(st.integers(1, len(valid_record) - 1))]).decode()}
    elif kind == "valid":
        value = {"b64": base64.b64encode(valid_record).decode()}
    elif kind == "wide":
        value = {"b64": base64.b64encode(_wrong_width()).decode()}
    elif kind == "nan":
        value = {"b64": base64.b64encode(_nan_example()).decode()}
    else:
        value = {"b64": base64.b64encode(_example_without_modalities()).decode()}
    response = _answer(predictor, {"signature_name": "serve_examples", "instances": [value]})
    if kind == "valid":
        assert response is not None and response["predictions"][0]["condition"] == "a"
    elif kind in ("wide", "nan", "absent", "truncated"):
        assert response is None
    _still_serves(predictor)


def _wrong_width():
    import tensorflow as tf

    example = tf.train.SequenceExample()
    example.feature_lists.feature_list["acoustic"].feature.add().float_list.value.extend([1.0] * 5)
    return example.SerializeToString()


def _nan_example():
    import tensorflow as tf

    example = tf.train.SequenceExample()
    example.feature_lists.feature_list["text"].feature.add().float_list.value.extend([0.0] * 6 + [math.nan])
    return example.SerializeToString()


def _example_without_modalities():
    import tensorflow as tf

    return tf.train.SequenceExample().SerializeToString()


instance_values = json_values | st.fixed_dictionaries({"b64": st.text(max_size=12) | json_scalars})


@FUZZ
@given(instance=st.dictionaries(st.sampled_from(["audio", "video", "transcript", "start", "end", "face_region", "x"]),
                                instance_values, max_size=5))
def test_raw_media_instances(predictor, instance):
    """A raw-media instance is parsed into a `MediaRequest` or refused naming the field; this
    model records no extraction settings, so each is answered 400 (never a crash)."""
    try:
        request = _media_request(0, instance)
    except media_inputs.MediaInputError as error:
        assert str(error).startswith("instances[0]")
    else:
        assert isinstance(request, media_inputs.MediaRequest)
        for field in ("start", "end"):
            assert getattr(request, field) is None or math.isfinite(getattr(request, field))
    if set(instance) & set(media_inputs.MEDIA_FIELDS):
        assert _answer(predictor, {"instances": [instance]}) is None


_SENSITIVE = ("open", "os.", "subprocess.", "shutil.", "socket.", "ctypes.", "glob.", "tempfile.")
_recording = threading.local()
_events = []


def _hook(event, args):
    if getattr(_recording, "on", False) and event.startswith(_SENSITIVE):
        _events.append((event, repr(args)[:200]))


def _record():
    """Starts recording this thread's audit events (the hook, which cannot be removed once added,
    is added on first use and records only while a test turns it on)."""
    if not _hook_added:
        sys.addaudithook(_hook)
        _hook_added.append(True)
    _events.clear()
    _recording.on = True


_hook_added = []


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(payload=st.fixed_dictionaries({
    "signature_name": st.sampled_from(["serving_default", "serve_examples", "/etc/passwd", "../../x", "$(id)"]),
    "instances": st.lists(st.fixed_dictionaries({"b64": st.sampled_from(
        ["L2V0Yy9wYXNzd2Q=", "JChybSAtcmYgLyk=", "Li4vLi4vLi4vZXRjL3NoYWRvdw==", "!!", "aGVsbG8="])}), min_size=1,
        max_size=3)}))
def test_nothing_in_a_request_reaches_the_filesystem_or_a_shell(predictor, payload):
    """Paths, shell commands and their base64 as signature names and string inputs: the predictor
    opens no file, lists no directory and starts no process while it answers."""
    pinned = predictor.preprocess(copy.deepcopy(payload))
    _record()
    try:
        predictor.predict(pinned)
    except InvalidInput:
        pass
    finally:
        _recording.on = False
    assert _events == []


def test_the_audit_hook_sees_file_and_process_access(tmp_path):
    _record()
    try:
        open(tmp_path / "x", "w").close()
        import os

        os.listdir(tmp_path)
    finally:
        _recording.on = False
    assert [event for event, _ in _events] == ["open", "os.listdir"]
