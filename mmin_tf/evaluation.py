"""Predicting and scoring a model on evaluation datasets, one per test condition."""

from __future__ import annotations

import json
import os
from typing import Mapping, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from mmin_tf import configs
from mmin_tf import metrics as metrics_lib
from mmin_tf import modalities as modalities_lib
from mmin_tf.data import format as format_lib
from mmin_tf.data import pipeline


def model_input_signature(modalities: Sequence[modalities_lib.ModalitySpec]) -> dict:
    """Named TensorSpecs of the model inputs: features `(batch, time, dim)`, lengths `(batch,)`.

    Also the `serving_default` signature of exported models.
    """
    signature = {}
    for spec in modalities:
        signature[spec.name] = tf.TensorSpec([None, None, spec.feature_dim], tf.float32, name=spec.name)
        signature[spec.length_key] = tf.TensorSpec([None], tf.int32, name=spec.length_key)
    return signature


def prediction_function(model, modalities: Sequence[modalities_lib.ModalitySpec]):
    """A traced `inputs -> probabilities (batch, classes)` with one signature for every shape."""

    @tf.function(input_signature=[model_input_signature(modalities)])
    def predict(inputs):
        return tf.nn.softmax(tf.cast(model(inputs, training=False)["logits"], tf.float32))

    return predict


def predict_dataset(predict, dataset: tf.data.Dataset):
    """Runs `predict` over `(inputs, label, utterance_id)` batches.

    Returns:
        `(labels (n,), probabilities (n, classes), utterance_ids (n,))` as numpy arrays.
    """
    labels, probabilities, ids = [], [], []
    for inputs, label, utterance_id in dataset:
        probabilities.append(predict(inputs).numpy())
        labels.append(label.numpy())
        ids.append(utterance_id.numpy())
    if not labels:  # every utterance left out (see `pipeline.make_evaluation_dataset`)
        return np.zeros([0], np.int32), np.zeros([0, 0], np.float32), np.zeros([0], object)
    return np.concatenate(labels), np.concatenate(probabilities), np.concatenate(ids)


def evaluate_conditions(
    predict,
    datasets: Mapping[str, tf.data.Dataset],
    modalities: Sequence[modalities_lib.ModalitySpec],
    num_classes: int,
):
    """Metrics per condition + summaries (see `metrics.condition_report`) and predictions.

    Returns:
        `(report, predictions)`; predictions maps condition -> (labels, probabilities, ids).
    """
    predictions = {name: predict_dataset(predict, dataset) for name, dataset in datasets.items()}
    empty = [name for name, (labels, _, _) in predictions.items() if len(labels) == 0]
    if empty:
        raise ValueError(
            f"No utterance to score under conditions {empty}: every one lacks all their modalities in the data")
    report = metrics_lib.condition_report(
        {name: (labels, probs.argmax(-1)) for name, (labels, probs, _) in predictions.items()},
        [condition.name for condition in modalities_lib.missing_conditions(modalities)],
        num_classes,
    )
    return report, predictions


def evaluate_missing_rates(
    predict, examples: tf.data.Dataset, modalities, num_classes: int, rates: Sequence[float], seed: int, batching,
) -> dict:
    """Metrics under the missing-rate protocol: at each rate, each modality of each utterance is
    dropped with that probability (at least one kept; `pipeline.drop_modalities`, masks fixed by
    `seed` and the utterance), and every utterance is scored with what remains.

    Returns:
        `{str(rate): {"wa", "ua", "f1", "conditions": {condition name: utterances}}}`.
    """
    full = modalities_lib.full_condition(modalities)
    codes = [spec.code for spec in modalities]
    order = [condition.name for condition in modalities_lib.evaluation_conditions(modalities)]
    report = {}
    for rate in rates:
        dropped = pipeline.drop_modalities(examples, modalities, {spec.name: rate for spec in modalities}, seed)
        labels, probabilities, counts = [], [], {}
        for inputs, label, _ in pipeline.make_evaluation_dataset(dropped, modalities, full, batching):
            probabilities.append(predict(inputs).numpy())
            labels.append(label.numpy())
            for row in pipeline.presence(inputs, modalities).numpy():
                name = "".join(code for code, present in zip(codes, row) if present)
                counts[name] = counts.get(name, 0) + 1
        labels, probabilities = np.concatenate(labels), np.concatenate(probabilities)
        report[str(rate)] = {
            **metrics_lib.classification_metrics(labels, probabilities.argmax(-1), num_classes),
            "conditions": {name: counts[name] for name in sorted(counts, key=order.index)},
        }
    return report


def confusion_matrices(predictions, label_names: Sequence[str]) -> dict:
    """confusion_matrices.json: `{"label_names", "conditions": {name: rows = true classes}}`."""
    return {
        "label_names": list(label_names),
        "conditions": {
            name: metrics_lib.confusion_matrix(labels, probs.argmax(-1), len(label_names)).tolist()
            for name, (labels, probs, _) in predictions.items()
        },
    }


def evaluate_run(run_dir: str, data_dir: Optional[str] = None, output_dir: Optional[str] = None) -> dict:
    """Re-evaluates a run's `best.keras` on its fold's test split under every test condition.

    The conditions, batching and metrics are those of training, so on the run's own data the
    result equals the metrics.json training wrote.

    Args:
        run_dir: a training run directory (config.json, best.json, best.keras).
        data_dir: the dataset; default: the one in config.json. Its modalities and label names
            must be the model's.
        output_dir: where metrics.json and confusion_matrices.json are written; default
            `run_dir`, which is refused when `data_dir` is another dataset (it would replace the
            run's own results).

    Returns:
        The metrics.json content: `{"model", "fold", "seed", "best_epoch", "conditions",
        "missing_mean", "missing_pooled"}`.

    Raises:
        RunError: not a (finished) run, or data that do not fit the model.
    """
    from mmin_tf import training  # training.py and callbacks.py import this module

    config = configs.TrainConfig.from_json(training.load_run_config(run_dir))
    own_data_dir = config.data.data_dir
    data_dir = data_dir or own_data_dir
    if output_dir is None:
        if os.path.abspath(data_dir) != os.path.abspath(own_data_dir):
            raise training.RunError(
                f"Evaluating {run_dir!r} on {data_dir!r}, not its own dataset {own_data_dir!r}, would "
                "replace the run's metrics.json; give an output directory"
            )
        output_dir = run_dir
    best_path = os.path.join(run_dir, training.BEST_MODEL)
    best_state = os.path.join(run_dir, training.BEST_STATE)
    if not os.path.exists(best_path) or not os.path.exists(best_state):
        raise training.RunError(
            f"{run_dir!r} has no best model yet ({training.BEST_MODEL}, {training.BEST_STATE})"
        )
    info = format_lib.load_info(data_dir)
    model = keras.saving.load_model(best_path)
    expected = [spec.to_json() for spec in model.modalities]
    received = [spec.to_json() for spec in info.modalities]
    if expected != received:
        raise training.RunError(
            f"{data_dir!r} has modalities {received}, but the model of {run_dir!r} was trained on {expected}"
        )
    labels_path = os.path.join(run_dir, training.LABELS)
    if os.path.exists(labels_path):
        with open(labels_path) as f:
            label_names = json.load(f)
        if label_names != list(info.label_names):
            raise training.RunError(
                f"{data_dir!r} has labels {list(info.label_names)}, but {run_dir!r} was trained on {label_names}"
            )
    test = pipeline.read_fold_split(data_dir, info, config.data.fold, "test").cache()
    return training.write_test_metrics(
        model, config, info, test, training.batching_for(info, config), training.best_epoch(run_dir), output_dir
    )
