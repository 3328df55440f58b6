"""Emotion from raw media: the front end, `python -m mmin_tf.predict`, and the served endpoint."""

import base64
import json
import os
import subprocess
import sys
import urllib.request

import numpy as np
import pytest
import tensorflow as tf

from mmin_tf import client
from mmin_tf.export import saved_model
from mmin_tf.features.extractor import MediaExtractor
from mmin_tf.features.settings import ExtractionSettings
from mmin_tf.serving import media_inputs
from mmin_tf.serving.media_inputs import MediaFrontEnd, MediaInputError, MediaLimits, MediaRequest
from tests import media_fixtures, model_server

pytest.importorskip("kserve")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _bytes(path):
    with open(path, "rb") as f:
        return f.read()


def _request(record, **changes):
    """A record's media as a request (audio and video as bytes)."""
    fields = dict(audio=_bytes(record.audio), transcript=record.transcript, video=_bytes(record.video),
                  start=record.video_start, face_region=str(record.face_region))
    fields.update(changes)
    return MediaRequest(**fields)


@pytest.fixture(scope="module")
def front_end(media_export, bert_preset, face_model):
    version_dir, _ = media_export
    return MediaFrontEnd(media_inputs.read_extraction(version_dir), bert_preset, face_model)


def _serve(version_dir, inputs):
    signature = tf.saved_model.load(version_dir).signatures[saved_model.SERVING_SIGNATURE]
    return {key: value.numpy() for key, value in signature(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def test_the_export_records_the_extraction_and_the_labels(media_export, bert_preset, face_model):
    version_dir, _ = media_export
    recorded = media_inputs.read_extraction(version_dir)
    assert [spec["name"] for spec in recorded["modalities"]] == ["acoustic", "visual", "text"]
    assert ExtractionSettings.from_json(recorded["extraction"]).models["visual"].name == "face.keras"
    assert saved_model.read_label_names(version_dir) == ["happy", "sad"]


def test_raw_media_give_the_features_of_the_training_extraction(media_export, front_end, bert_preset, face_model):
    version_dir, records = media_export
    inputs, missing = front_end.inputs([_request(records[0]), _request(records[1], video=None)])
    assert missing == [{}, {"visual": "absent from the request"}]
    # The same video span: the records' video_start goes in as the request's span start.
    extracted = MediaExtractor(ExtractionSettings(), ("acoustic", "visual", "text"), bert_preset, face_model).extract(
        [records[0]])[0].features
    for name, expected in extracted.items():
        np.testing.assert_allclose(inputs[name][0, :inputs[f"{name}_length"][0]], expected, atol=1e-5)
    assert inputs["visual_length"][1] == 0
    served = _serve(version_dir, inputs)
    assert [c.decode() for c in served["condition"]] == ["avt", "at"]


def test_no_face_makes_the_visual_modality_missing(media_export, front_end):
    _, records = media_export
    inputs, [missing] = front_end.inputs([_request(records[0], face_region="0:0:0.5:1")])
    assert missing == {"visual": "no face found in the video"} and inputs["visual_length"][0] == 0


@pytest.mark.parametrize("changes, match", [
    (dict(audio=None, transcript=None, video=None), r"instances\[0\]: no audio, transcript or video"),
    (dict(transcript="   "), r"instances\[0\].transcript: the transcript is empty"),
    (dict(audio=b"not audio"), r"instances\[0\].audio: cannot be decoded as audio"),
    (dict(video=b"not video"), r"instances\[0\].video: cannot be decoded as video"),
    (dict(face_region="left"), r"instances\[0\]: A face region is left:top:right:bottom"),
    (dict(start=30.0), r"the span \[30.0, None\] s lies outside|lies outside"),
])
def test_bad_requests_name_the_field(media_export, front_end, changes, match):
    _, records = media_export
    with pytest.raises(MediaInputError, match=match):
        front_end.inputs([_request(records[0], **changes)])


def test_limits(media_export, bert_preset, face_model, tmp_path):
    version_dir, records = media_export
    small = MediaFrontEnd(media_inputs.read_extraction(version_dir), bert_preset, face_model,
                          MediaLimits(max_bytes=1000, max_seconds=0.5, max_transcript_chars=5))
    with pytest.raises(MediaInputError, match=r"instances\[0\].audio: \d+ bytes exceed the limit of 1000"):
        small.inputs([_request(records[0], video=None, transcript=None)])
    short = MediaFrontEnd(media_inputs.read_extraction(version_dir), bert_preset, face_model,
                          MediaLimits(max_seconds=0.5))
    with pytest.raises(MediaInputError, match=r"instances\[0\].audio: 0.8 s exceed the limit of 0.5 s"):
        short.inputs([_request(records[0], video=None)])
    with pytest.raises(MediaInputError, match=r"instances\[0\].video: \d+ bytes exceed the limit of 1000"):
        small.inputs([_request(records[0], audio=None, transcript=None)])
    with pytest.raises(MediaInputError, match=r"instances\[0\].transcript: 10 characters exceed the limit of 5"):
        small.inputs([MediaRequest(transcript="Excuse me.")])
    with pytest.raises(ValueError, match="Media limits must be positive"):
        MediaLimits(max_bytes=0)


def test_other_models_and_unrecorded_settings_are_refused(media_export, exported, bert_preset, tmp_path):
    version_dir, _ = media_export
    other_face = media_fixtures.tiny_face_model(tmp_path / "other.keras", seed=7)
    with pytest.raises(ValueError, match="is not the one the features were extracted with"):
        MediaFrontEnd(media_inputs.read_extraction(version_dir), bert_preset, other_face)
    with pytest.raises(ValueError, match="records no feature extraction settings"):
        MediaFrontEnd(media_inputs.read_extraction(exported), bert_preset)
    without_faces = MediaFrontEnd(media_inputs.read_extraction(version_dir), bert_preset)
    with pytest.raises(MediaInputError, match=r"instances\[0\].video: the server has no --face_model"):
        without_faces.inputs([MediaRequest(video=b"x")])


def test_the_predict_command(media_export, exported, bert_preset, face_model):
    version_dir, records = media_export
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join(filter(None, [REPO_ROOT, os.environ.get("PYTHONPATH")])))
    command = [sys.executable, "-m", "mmin_tf.predict", f"--bert_preset={bert_preset}", f"--face_model={face_model}"]
    result = subprocess.run(command + [f"--model_dir={os.path.dirname(version_dir)}", f"--audio={records[0].audio}",
                                       f"--transcript={records[0].transcript}", f"--video={records[0].video}",
                                       "--face_region=0:0:0.5:1"],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    printed = json.loads(result.stdout)
    assert printed["condition"] == "at" and printed["missing_modalities"] == {"visual": "no face found in the video"}
    assert set(printed["probabilities"]) == {"happy", "sad"} and printed["class_name"] in ("happy", "sad")
    assert abs(sum(printed["probabilities"].values()) - 1) < 1e-4
    refused = subprocess.run(command + [f"--model_dir={exported}", "--transcript=hello"],
                             cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert refused.returncode == 1 and "records no feature extraction settings" in refused.stderr


@pytest.fixture(scope="module")
def media_server(media_export, bert_preset, face_model):
    version_dir, _ = media_export
    port = model_server.free_port()
    flags = [f"--bert_preset={bert_preset}", f"--face_model={face_model}", "--max_media_bytes=400000",
             "--max_media_seconds=5"]
    with model_server.running(os.path.dirname(version_dir), port, flags):
        yield f"http://127.0.0.1:{port}/v1/models/mmin:predict"


def _post(url, payload):
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_raw_media_over_http_equal_the_features_path(media_server, media_export, front_end):
    _, records = media_export
    media = [{"audio": records[0].audio, "transcript": records[0].transcript, "video": records[0].video,
              "start": records[0].video_start, "face_region": "0.5:0:1:1"},
             {"transcript": records[3].transcript}]
    raw = client.predict(media_server, client.media_payload(media))["predictions"]
    assert [p["condition"] for p in raw] == ["avt", "t"]
    assert raw[1]["missing_modalities"] == {"acoustic": "absent from the request", "visual": "absent from the request"}
    inputs, _ = front_end.inputs([_request(records[0], face_region="0.5:0:1:1"), MediaRequest(transcript=records[3].transcript)])
    features = client.predict(media_server, {"inputs": {k: v.tolist() for k, v in inputs.items()}})["outputs"]
    np.testing.assert_allclose([p["probabilities"] for p in raw], features["probabilities"], atol=1e-5)


def test_no_face_over_http(media_server, media_export):
    _, records = media_export
    [prediction] = client.predict(media_server, client.media_payload(
        [{"audio": records[0].audio, "video": records[0].video, "face_region": "0:0:0.5:1"}]))["predictions"]
    assert prediction["condition"] == "a" and prediction["missing_modalities"]["visual"] == "no face found in the video"


def test_bad_raw_media_get_400_naming_the_field_and_the_server_keeps_serving(media_server, media_export, tmp_path):
    _, records = media_export
    b64 = lambda data: {"b64": base64.b64encode(data).decode()}
    long_wav = _bytes(media_fixtures.write_tone(tmp_path / "long.wav", seconds=6.0))
    cases = [
        ({"audio": b64(b"not audio")}, "instances[0].audio: cannot be decoded as audio"),
        ({"video": b64(b"not a video")}, "instances[0].video: cannot be decoded as video"),
        ({"transcript": ""}, "instances[0].transcript: the transcript is empty"),
        ({"audio": b64(b"\0" * 500000)}, "instances[0].audio: 500000 bytes exceed the limit of 400000"),
        ({"audio": b64(long_wav)}, "instances[0].audio: 6.0 s exceed the limit of 5 s"),
        ({"audio": None}, "instances[0]: no audio, transcript or video"),
        ({"audio": {"b64": "%%%"}}, "instances[0].audio.b64 is not valid base64"),
        ({"audio": "x.wav"}, 'instances[0].audio must be {"b64": <base64 of the file>}'),
        ({"transcript": "hi", "smell": 1}, "instances[0]: unknown fields ['smell']"),
    ]
    for instance, message in cases:
        status, body = _post(media_server, {"instances": [instance]})
        assert status == 400 and message in body["error"], (instance, status, body)
    status, body = _post(media_server, client.media_payload([{"transcript": "Excuse me."}]))
    assert status == 200 and body["predictions"][0]["condition"] == "t"


def test_client_media_payload(tmp_path):
    wav = media_fixtures.write_tone(tmp_path / "a.wav", seconds=0.2)
    payload = client.media_payload([{"audio": wav, "transcript": "hi", "start": 0.1}, {"video": b"\x00\x01"}])
    assert payload["instances"][0]["audio"] == {"b64": base64.b64encode(_bytes(wav)).decode()}
    assert payload["instances"][0]["transcript"] == "hi" and payload["instances"][0]["start"] == 0.1
    assert payload["instances"][1] == {"video": {"b64": "AAE="}}
    with pytest.raises(ValueError, match="has no audio, transcript or video"):
        client.media_payload([{"start": 1.0}])
    with pytest.raises(ValueError, match=r"unknown fields \['smell'\]"):
        client.media_payload([{"smell": 1}])
