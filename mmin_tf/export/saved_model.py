"""SavedModel export for TF Serving: one model, any subset of modalities per request.

Signatures (see docs/serving.md):

    serving_default(<modality>: float32 (batch, time, dim), <modality>_length: int32 (batch,))
    serve_examples(examples: string (batch,))       serialized tf.train.SequenceExample
        -> probabilities float32 (batch, classes), class_id int32 (batch,),
           class_name string (batch,), condition string (batch,)

A modality with 0 valid frames (or an absent feature list) is missing; `condition` names the
modalities the example was treated as having (e.g. "at"). The normalization statistics are part of
the model. An example with no modality at all is rejected with an InvalidArgumentError naming it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import keras
import numpy as np
import tensorflow as tf
from absl import logging

from mmin_tf import modalities as modalities_lib
from mmin_tf.data import format as format_lib
from mmin_tf.evaluation import model_input_signature
from mmin_tf.run_dir import BEST_MODEL, EXTRACTION, LABELS, METRICS, RunError, load_run_config

SERVING_SIGNATURE = "serving_default"
EXAMPLES_SIGNATURE = "serve_examples"
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
# How the training features were made (`mmin_tf.serving.media_inputs` reads it), and the class
# names in probability order; TF Serving ignores both.
EXTRACTION_FILE = os.path.join("assets.extra", "extraction.json")
LABELS_FILE = os.path.join("assets.extra", "labels.json")
NO_MODALITY_MESSAGE = "has no modality with frames: at least one modality must have length > 0"


def serving_outputs(model, inputs: dict, modalities, label_names) -> dict:
    """The served computation: validation, the model, and the named outputs (pure TF)."""
    checks = []
    for spec in modalities:
        lengths, time = inputs[spec.length_key], tf.shape(inputs[spec.name])[1]
        checks.append(tf.debugging.assert_non_negative(lengths, message=f"{spec.length_key} must be >= 0"))
        checks.append(
            tf.debugging.assert_less_equal(
                lengths, time, message=f"{spec.length_key} exceeds the time dimension of {spec.name}"
            )
        )
    present = tf.stack([inputs[spec.length_key] > 0 for spec in modalities], axis=1)  # (B, M)
    empty = tf.where(tf.logical_not(tf.reduce_any(present, axis=1)))[:, 0]
    checks.append(
        tf.debugging.Assert(
            tf.equal(tf.size(empty), 0), ["Examples at batch positions", empty, NO_MODALITY_MESSAGE]
        )
    )
    with tf.control_dependencies(checks):
        logits = model(inputs, training=False)["logits"]
    probabilities = tf.nn.softmax(tf.cast(logits, tf.float32))
    class_id = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
    letters = tf.where(present, tf.constant([[spec.code for spec in modalities]]), "")
    return {
        "probabilities": probabilities,
        "class_id": class_id,
        "class_name": tf.gather(tf.constant(list(label_names)), class_id),
        "condition": tf.strings.reduce_join(letters, axis=1),
    }


def build_archive(model, modalities, label_names) -> keras.export.ExportArchive:
    """An ExportArchive with both signatures, tracking only `model` (the served network)."""
    modalities = tuple(modalities)
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(inputs):
        return serving_outputs(model, inputs, modalities, label_names)

    def serve_examples(examples):
        parsed = format_lib.parse_sequence_examples(examples, modalities)
        return serving_outputs(model, parsed, modalities, label_names)

    archive.add_endpoint(SERVING_SIGNATURE, serve, input_signature=[model_input_signature(modalities)])
    archive.add_endpoint(
        EXAMPLES_SIGNATURE, serve_examples, input_signature=[tf.TensorSpec([None], tf.string, name="examples")]
    )
    return archive


def versions(export_dir: str) -> list[int]:
    """The integer version directories in `export_dir` (TF Serving's layout); [] when it does not exist."""
    if not os.path.isdir(export_dir):
        return []
    return [int(name) for name in os.listdir(export_dir) if re.fullmatch(r"\d+", name)]


def next_version(export_dir: str) -> int:
    """1 + the highest integer version directory in `export_dir` (1 when there is none)."""
    return max(versions(export_dir), default=0) + 1


def warmup_requests(modalities, model_name: str, time: int = 8, seed: int = 0) -> list[bytes]:
    """Serialized `PredictionLog`s for TF Serving's warm-up: two requests per test condition.

    For every condition, a `serving_default` request with two examples of `time` random frames
    per present modality (missing modalities have length 0) and a `serve_examples` request with
    one serialized example, so both signatures' graph paths run at load time.
    """
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    rng = np.random.default_rng(seed)
    records = []
    for condition in modalities_lib.evaluation_conditions(modalities):
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=model_name, signature_name=SERVING_SIGNATURE)
        )
        for spec, available in zip(modalities, condition.available):
            frames = time if available else 0
            features = rng.normal(size=(2, max(frames, 1), spec.feature_dim)).astype(np.float32)
            request.inputs[spec.name].CopyFrom(tf.make_tensor_proto(features))
            request.inputs[spec.length_key].CopyFrom(tf.make_tensor_proto(np.full([2], frames, np.int32)))
        log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
        records.append(log.SerializeToString())
        # The same condition through `serve_examples` (absent feature lists = missing).
        utterance = format_lib.Utterance(
            "warmup", "", "", 0,
            {
                spec.name: rng.normal(size=(time, spec.feature_dim)).astype(np.float32)
                for spec, available in zip(modalities, condition.available)
                if available
            },
        )
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=model_name, signature_name=EXAMPLES_SIGNATURE)
        )
        request.inputs["examples"].CopyFrom(
            tf.make_tensor_proto([format_lib.serialize_utterance(utterance, modalities)], dtype=tf.string)
        )
        log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
        records.append(log.SerializeToString())
    return records


def export_model(model, modalities, label_names, export_dir: str, warmup: bool = True, extraction=None) -> str:
    """Writes `model` as the next version under `export_dir`; returns the version directory.

    `extraction` (a run's `extraction.json`: the training data's extraction settings and the
    modalities) is written to `assets.extra/extraction.json`, for serving raw media. The SavedModel
    is written into a hidden temporary directory beside the versions and renamed into place when
    complete, so TF Serving never sees a partial version.
    """
    os.makedirs(export_dir, exist_ok=True)
    version = next_version(export_dir)
    temporary = tempfile.mkdtemp(prefix=f".{version}.incomplete-", dir=export_dir)
    try:
        build_archive(model, modalities, label_names).write_out(temporary, verbose=False)
        if warmup:
            os.makedirs(os.path.join(temporary, "assets.extra"), exist_ok=True)
            with tf.io.TFRecordWriter(os.path.join(temporary, WARMUP_FILE)) as writer:
                for record in warmup_requests(modalities, os.path.basename(os.path.normpath(export_dir))):
                    writer.write(record)
        os.makedirs(os.path.join(temporary, "assets.extra"), exist_ok=True)
        with open(os.path.join(temporary, LABELS_FILE), "w") as f:
            json.dump(list(label_names), f)
        if extraction is not None:
            with open(os.path.join(temporary, EXTRACTION_FILE), "w") as f:
                json.dump(extraction, f, indent=2)
        final = os.path.join(export_dir, str(version))
        os.rename(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    logging.info("Exported version %d to %s", version, final)
    return final


def read_label_names(version_dir: str) -> list[str]:
    """The exported model's class names, in the order of its `probabilities`."""
    path = os.path.join(version_dir, LABELS_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{version_dir!r} has no {LABELS_FILE}; export it again with this mmin_tf")
    with open(path) as f:
        return json.load(f)


def export_run(run_dir: str, export_dir: str, warmup: bool = True, encoder_rows=None) -> str:
    """Exports the best model of a finished training run (`best.keras`, class names from `labels.json`).

    `encoder_rows` (an `EncoderRows` or its value; see `ModalityEmbedder`) replaces the model's own
    setting in the served graph; None keeps it. AUTO resolves on this machine, when the graph is
    traced: export with PRESENT for CPU servers, ALL for GPU servers.
    """
    load_run_config(run_dir)  # a clear error when run_dir is not a run directory
    if not os.path.exists(os.path.join(run_dir, METRICS)):
        raise RunError(f"{run_dir!r} is not a finished run ({METRICS} missing); finish training first")
    with open(os.path.join(run_dir, LABELS)) as f:
        label_names = json.load(f)
    extraction = None
    if os.path.exists(os.path.join(run_dir, EXTRACTION)):
        with open(os.path.join(run_dir, EXTRACTION)) as f:
            extraction = json.load(f)
    model = keras.saving.load_model(os.path.join(run_dir, BEST_MODEL))
    if encoder_rows is not None:
        model.embedder.encoder_rows = encoder_rows
    return export_model(model, model.modalities, label_names, export_dir, warmup, extraction)
