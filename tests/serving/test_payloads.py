"""Every way `payloads` and the predictor refuse a request: HTTP 400 with a message naming it."""

import pytest

pytest.importorskip("kserve")

from kserve.errors import InvalidInput  # noqa: E402

from mmin_tf.serving import media_inputs  # noqa: E402
from mmin_tf.serving.predictor import SavedModelPredictor, _media_request  # noqa: E402
from tests.serving import versions_fixtures as fixtures  # noqa: E402


@pytest.fixture(scope="module")
def predictor(exported, tmp_path_factory):
    return SavedModelPredictor("mmin", fixtures.base_with_version(exported, tmp_path_factory.mktemp("payloads")))


def _with(**changes):
    payload = fixtures.payload(batch=1)
    payload["inputs"].update(changes)
    return payload


def _one_instance(**changes):
    inputs = fixtures.payload(batch=1)["inputs"]
    return {key: value[0] for key, value in {**inputs, **changes}.items()}


@pytest.mark.parametrize("payload, match", [
    (b"{not json", r"The request body is not JSON"),
    ({"instances": [{}], "inputs": {}}, r"exactly one of 'instances' \(row format\) and 'inputs'"),
    ({}, r"exactly one of 'instances'"),
    ({"instances": [[1, 2]]}, r"instances\[0\] must be an object of named inputs"),
    ({"instances": [_one_instance(), {"acoustic": [[0.0] * 6]}]},
     r"instances\[1\] has inputs \['acoustic'\]; instances\[0\] has .*every instance names the same inputs"),
    ({"inputs": [[1.0]]}, r"'inputs' must be an object of named inputs; received \[\[1.0\]\]"),
    (_with(extra=[1]), r"Inputs must be .*; missing \[\], unknown \['extra'\]"),
    (_with(acoustic_length=[1, 1]), r"Every input must have the same batch size \(first dimension\)"),
    (_with(acoustic=[[["a"] * 6]]), r"Input 'acoustic' must hold float32 numbers"),
    (_with(acoustic=[[[True] * 6]]), r"Input 'acoustic' must hold float32 numbers"),
    (_with(acoustic_length=[1.5]), r"Input 'acoustic_length' must hold integers"),
    (_with(acoustic_length=[2 ** 31]), r"Input 'acoustic_length' holds values outside int32"),
    (_with(acoustic_length=[-1]), r"acoustic_length must be >= 0"),
    (_with(acoustic=[[[0.0] * 6], [[0.0] * 5]]), r"Input 'acoustic' must be a rectangular array"),
    (_with(acoustic=[[[0.0] * 4]]), r"Input 'acoustic' must have shape \[None, None, 6\]; received \[1, 1, 4\]"),
    ({"signature_name": "serve_examples", "inputs": {"examples": [["x"]]}}, r"Input 'examples' is nested deeper"),
    ({"signature_name": "serve_examples", "inputs": {"examples": [1]}},
     r"Input 'examples' must hold strings or \{\"b64\": <base64>\}; received 1"),
    ({"signature_name": "serve_examples", "inputs": {"examples": "x"}}, r"Input 'examples' must have shape \[None\]"),
    ({"signature_name": "serve_examples", "instances": [{"b64": "%%"}]}, r"Input 'examples': .* is not valid base64"),
    ({"signature_name": 7, "inputs": {}},
     r"Unknown signature_name 7; available: \['serve_examples', 'serving_default'\]"),
])
def test_bad_requests_are_refused_with_a_message(predictor, payload, match):
    with pytest.raises(InvalidInput, match=match):
        predictor.predict(payload)
    assert predictor.predict(fixtures.payload())["outputs"]["class_name"]


@pytest.mark.parametrize("instance, match", [
    ({"transcript": "hi", "start": float("inf")}, r"instances\[0\].start must be a finite number of seconds"),
    ({"transcript": "hi", "end": True}, r"instances\[0\].end must be a finite number of seconds"),
    ({"transcript": 3}, r"instances\[0\].transcript must be a string"),
    ({"transcript": "hi", "face_region": 1}, r"instances\[0\].face_region must be a string"),
    ({"audio": {"b64": "!!"}}, r"instances\[0\].audio.b64 is not valid base64"),
])
def test_bad_raw_media_fields_are_named(instance, match):
    with pytest.raises(media_inputs.MediaInputError, match=match):
        _media_request(0, instance)
