"""HTTP round trip through a real model server speaking TF Serving's REST predict protocol.

`python -m mmin_tf.serving` (KServe's model server) is started on 127.0.0.1 with the exported
model; the client's `instances` and `inputs` payloads must give what the SavedModel gives.
"""

import base64
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from mmin_tf import client
from mmin_tf.data import format as format_lib
from tests import model_server, tiny_runs
from tests.test_export import CONDITIONS, MODALITIES, mixed_condition_batch

pytest.importorskip("kserve")


@pytest.fixture(scope="module")
def server(exported):
    port = model_server.free_port()
    with model_server.running(os.path.dirname(exported), port, ["--host=127.0.0.1"]):
        yield f"http://127.0.0.1:{port}/v1/models/mmin:predict"


def _examples(inputs):
    return [
        {
            spec.name: inputs[spec.name][row, : inputs[spec.length_key][row]]
            for spec in MODALITIES
            if inputs[spec.length_key][row] > 0
        }
        for row in range(len(CONDITIONS))
    ]


@pytest.fixture(scope="module")
def expected(exported):
    inputs = mixed_condition_batch(seed=2)
    serve = tf.saved_model.load(exported).signatures["serving_default"]
    outputs = serve(**client.batch_tensors(_examples(inputs), MODALITIES))
    return _examples(inputs), {key: value.numpy() for key, value in outputs.items()}


def test_instances_round_trip(server, expected):
    examples, outputs = expected
    response = client.predict(server, client.instances_payload(examples, MODALITIES))
    predictions = response["predictions"]
    assert len(predictions) == len(CONDITIONS)
    np.testing.assert_allclose([p["probabilities"] for p in predictions], outputs["probabilities"], rtol=1e-5)
    assert [p["condition"] for p in predictions] == [c.name for c in CONDITIONS]
    assert [p["class_name"] for p in predictions] == [n.decode() for n in outputs["class_name"]]


def test_inputs_round_trip(server, expected):
    examples, outputs = expected
    response = client.predict(server, client.inputs_payload(examples, MODALITIES))
    np.testing.assert_allclose(response["outputs"]["probabilities"], outputs["probabilities"], rtol=1e-5)
    assert response["outputs"]["class_id"] == outputs["class_id"].tolist()


def test_serialized_examples_in_base64(server, expected):
    examples, outputs = expected
    instances = []
    for index, features in enumerate(examples):
        utterance = format_lib.Utterance(f"u{index}", "s", "g", 0, features)
        record = format_lib.serialize_utterance(utterance, MODALITIES)
        instances.append({"b64": base64.b64encode(record).decode("ascii")})
    response = client.predict(server, {"signature_name": "serve_examples", "instances": instances})
    np.testing.assert_allclose(
        [p["probabilities"] for p in response["predictions"]], outputs["probabilities"], rtol=1e-5
    )


def test_request_without_any_modality_gets_a_clear_400(server, expected):
    examples, _ = expected
    payload = client.inputs_payload(examples[:2], MODALITIES)
    for spec in MODALITIES:
        payload["inputs"][spec.length_key][1] = 0
    with pytest.raises(client.PredictError, match=r"400: .*has no modality with frames"):
        client.predict(server, payload)


def test_client_command_line(server, expected, tmp_path):
    examples, outputs = expected
    flags = []
    for name, array in examples[4].items():  # condition "at"
        np.save(tmp_path / f"{name}.npy", array)
        flags.append(f"--features={name}={tmp_path / name}.npy")
    modalities = ",".join(f"{s.name}:{s.code}:{s.feature_dim}:{s.encoder.value}" for s in tiny_runs.MODALITIES)
    result = subprocess.run(
        [sys.executable, "-m", "mmin_tf.client", f"--url={server}", f"--modalities={modalities}", *flags],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    prediction = json.loads(result.stdout)["predictions"][0]
    assert prediction["condition"] == "at"
    np.testing.assert_allclose(prediction["probabilities"], outputs["probabilities"][4], rtol=1e-5)
