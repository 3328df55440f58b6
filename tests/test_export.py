"""SavedModel export: signatures, agreement with the in-memory model, warm-up, atomic writes."""

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmin_tf import export
from mmin_tf import modalities as modalities_lib
from mmin_tf.data import format as format_lib
from mmin_tf.training import RunError
from tests import tiny_runs

MODALITIES = tiny_runs.MODALITIES
CONDITIONS = modalities_lib.evaluation_conditions(MODALITIES)


def mixed_condition_batch(seed=0, time=6):
    """One example per test condition (a, v, t, av, at, vt, avt), with ragged lengths."""
    rng = np.random.default_rng(seed)
    inputs = {}
    for index, spec in enumerate(MODALITIES):
        lengths = np.array(
            [rng.integers(1, time + 1) if c.available[index] else 0 for c in CONDITIONS], np.int32
        )
        features = rng.normal(size=(len(CONDITIONS), time, spec.feature_dim)).astype(np.float32)
        features[lengths == 0] = 0.0
        inputs[spec.name] = features
        inputs[spec.length_key] = lengths
    return inputs


def test_version_directories_are_numbered_and_complete(run_dir, tmp_path):
    export_dir = str(tmp_path / "mmin")
    first = export.export_run(run_dir, export_dir)
    second = export.export_run(run_dir, export_dir, warmup=False)
    assert [os.path.basename(first), os.path.basename(second)] == ["1", "2"]
    assert sorted(os.listdir(export_dir)) == ["1", "2"]
    for path in (first, second):
        assert os.path.exists(os.path.join(path, "saved_model.pb"))
    assert os.path.exists(os.path.join(first, export.WARMUP_FILE))
    assert not os.path.exists(os.path.join(second, export.WARMUP_FILE))


def test_failed_export_leaves_no_version(run_dir, tmp_path, monkeypatch):
    export_dir = tmp_path / "mmin"

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export.saved_model, "warmup_requests", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export.export_run(run_dir, str(export_dir))
    assert os.listdir(export_dir) == []


def test_a_directory_that_is_no_run_is_refused(tmp_path):
    with pytest.raises(RunError, match="not an mmin_tf run directory"):
        export.export_run(str(tmp_path), str(tmp_path / "out"))


def test_unfinished_run_is_refused(run_dir, tmp_path):
    unfinished = tmp_path / "unfinished"
    shutil.copytree(run_dir, unfinished)
    os.remove(unfinished / "metrics.json")

    with pytest.raises(RunError, match=r"not a finished run \(metrics.json missing\)"):
        export.export_run(str(unfinished), str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out")


def _served_op_types(version_dir):
    """Every op type of the serving signature's graph, its functions included."""
    graph = tf.saved_model.load(version_dir).signatures["serving_default"].graph.as_graph_def()
    types = {node.op for node in graph.node}
    for function in graph.library.function:
        types.update(node.op for node in function.node_def)
    return types


def test_encoder_rows_override_picks_the_served_computation(run_dir, tmp_path):
    present = export.export_run(run_dir, str(tmp_path / "present"), warmup=False, encoder_rows="present")
    every = export.export_run(run_dir, str(tmp_path / "all"), warmup=False, encoder_rows="all")

    assert "TensorScatterUpdate" in _served_op_types(present)
    assert "TensorScatterUpdate" not in _served_op_types(every)
    inputs = {key: tf.constant(value) for key, value in mixed_condition_batch(seed=2).items()}
    np.testing.assert_allclose(
        tf.saved_model.load(every).signatures["serving_default"](**inputs)["probabilities"].numpy(),
        tf.saved_model.load(present).signatures["serving_default"](**inputs)["probabilities"].numpy(),
        rtol=1e-5, atol=1e-6,
    )
    with pytest.raises(ValueError, match="`encoder_rows` must be one of"):
        export.export_run(run_dir, str(tmp_path / "bad"), warmup=False, encoder_rows="dense")
    assert not os.path.exists(tmp_path / "bad")


def test_export_command_takes_encoder_rows(run_dir, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mmin_tf.export", f"--run_dir={run_dir}", f"--export_dir={tmp_path / 'mmin'}",
         "--encoder_rows=all", "--nowarmup"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    version = result.stdout.strip().splitlines()[-1]
    assert version == str(tmp_path / "mmin" / "1")
    assert "TensorScatterUpdate" not in _served_op_types(version)


def test_signature_names_types_and_shapes(exported):
    loaded = tf.saved_model.load(exported)
    assert set(loaded.signatures) == {"serving_default", "serve_examples"}
    inputs = loaded.signatures["serving_default"].structured_input_signature[1]
    assert set(inputs) == {"acoustic", "acoustic_length", "visual", "visual_length", "text", "text_length"}
    assert inputs["acoustic"].shape.as_list() == [None, None, 6]
    assert inputs["acoustic"].dtype == tf.float32
    assert inputs["text_length"].shape.as_list() == [None]
    assert inputs["text_length"].dtype == tf.int32
    outputs = loaded.signatures["serving_default"].structured_outputs
    assert set(outputs) == {"probabilities", "class_id", "class_name", "condition"}


def test_exported_model_agrees_with_the_in_memory_model_for_every_condition(run_dir, exported):
    model = keras.saving.load_model(os.path.join(run_dir, "best.keras"))
    inputs = mixed_condition_batch()
    expected = tf.nn.softmax(model(inputs, training=False)["logits"]).numpy()
    served = tf.saved_model.load(exported).signatures["serving_default"](
        **{key: tf.constant(value) for key, value in inputs.items()}
    )
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, rtol=1e-5, atol=1e-6)
    assert [c.decode() for c in served["condition"].numpy()] == [c.name for c in CONDITIONS]
    with open(os.path.join(run_dir, "labels.json")) as f:
        labels = json.load(f)
    assert [n.decode() for n in served["class_name"].numpy()] == [labels[i] for i in expected.argmax(-1)]
    np.testing.assert_array_equal(served["class_id"].numpy(), expected.argmax(-1))


def test_examples_signature_treats_absent_feature_lists_as_missing(exported):
    inputs = mixed_condition_batch(seed=1)
    serialized = []
    for row, condition in enumerate(CONDITIONS):
        features = {
            spec.name: inputs[spec.name][row, : inputs[spec.length_key][row]]
            for spec, available in zip(MODALITIES, condition.available)
            if available
        }
        utterance = format_lib.Utterance(f"u{row}", "s", "g", 0, features)
        serialized.append(format_lib.serialize_utterance(utterance, MODALITIES))
    signatures = tf.saved_model.load(exported).signatures
    from_examples = signatures["serve_examples"](examples=tf.constant(serialized))
    from_tensors = signatures["serving_default"](**{k: tf.constant(v) for k, v in inputs.items()})
    np.testing.assert_allclose(
        from_examples["probabilities"].numpy(), from_tensors["probabilities"].numpy(), rtol=1e-5, atol=1e-6
    )
    assert [c.decode() for c in from_examples["condition"].numpy()] == [c.name for c in CONDITIONS]


def test_example_without_any_modality_is_an_error(exported):
    inputs = mixed_condition_batch()
    for spec in MODALITIES:
        inputs[spec.length_key][2] = 0
    serve = tf.saved_model.load(exported).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"batch positions.*\[2\].*has no modality with frames"):
        serve(**{key: tf.constant(value) for key, value in inputs.items()})


def test_length_beyond_time_is_an_error(exported):
    inputs = mixed_condition_batch()
    inputs["acoustic_length"][0] = 99
    serve = tf.saved_model.load(exported).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="acoustic_length exceeds the time dimension"):
        serve(**{key: tf.constant(value) for key, value in inputs.items()})


def test_warmup_requests_cover_every_condition_and_both_signatures(exported):
    from tensorflow_serving.apis import prediction_log_pb2

    records = list(tf.data.TFRecordDataset(os.path.join(exported, export.WARMUP_FILE)).as_numpy_iterator())
    assert len(records) == 2 * len(CONDITIONS)
    signatures = tf.saved_model.load(exported).signatures
    conditions = {"serving_default": [], "serve_examples": []}
    for record in records:
        request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
        name = request.model_spec.signature_name
        tensors = {key: tf.make_ndarray(value) for key, value in request.inputs.items()}
        outputs = signatures[name](**{k: tf.constant(v) for k, v in tensors.items()})
        conditions[name].append(outputs["condition"].numpy()[0].decode())
    expected = [c.name for c in CONDITIONS]
    assert conditions == {"serving_default": expected, "serve_examples": expected}


def test_saved_model_cli_show_and_run(exported, tmp_path):
    shown = subprocess.run(
        ["saved_model_cli", "show", "--dir", exported, "--tag_set", "serve", "--signature_def", "serving_default"],
        capture_output=True, text=True, timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert "inputs['acoustic_length']" in shown.stdout and "outputs['probabilities']" in shown.stdout
    inputs = mixed_condition_batch()
    paths = []
    for key, value in inputs.items():
        np.save(tmp_path / f"{key}.npy", value)
        paths.append(f"{key}={tmp_path / key}.npy")
    ran = subprocess.run(
        ["saved_model_cli", "run", "--dir", exported, "--tag_set", "serve", "--signature_def",
         "serving_default", "--inputs", ";".join(paths), "--outdir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    probabilities = np.load(tmp_path / "out" / "probabilities.npy")
    assert probabilities.shape == (len(CONDITIONS), 4)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
