"""Predicting and scoring a model on evaluation datasets, one per test condition."""

from __future__ import annotations

import json
import os
from typing import Mapping, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

import mmin_tf.models  # noqa: F401  (registers the model classes that `evaluate_run` loads)
from mmin_tf import configs
from mmin_tf import metrics as metrics_lib
from mmin_tf import modalities as modalities_lib
from mmin_tf import run_dir as run_dir_lib
from mmin_tf.atomic_files import write_json
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
    config = configs.TrainConfig.from_json(run_dir_lib.load_run_config(run_dir))
    own_data_dir = config.data.data_dir
    data_dir = data_dir or own_data_dir
    if output_dir is None:
        if os.path.abspath(data_dir) != os.path.abspath(own_data_dir):
            raise run_dir_lib.RunError(
                f"Evaluating {run_dir!r} on {data_dir!r}, not its own dataset {own_data_dir!r}, would "
                "replace the run's metrics.json; give an output directory"
            )
        output_dir = run_dir
    best_path = os.path.join(run_dir, run_dir_lib.BEST_MODEL)
    best_state = os.path.join(run_dir, run_dir_lib.BEST_STATE)
    if not os.path.exists(best_path) or not os.path.exists(best_state):
        raise run_dir_lib.RunError(
            f"{run_dir!r} has no best model yet ({run_dir_lib.BEST_MODEL}, {run_dir_lib.BEST_STATE})"
        )
    info = format_lib.load_info(data_dir)
    model = keras.saving.load_model(best_path)
    expected = [spec.to_json() for spec in model.modalities]
    received = [spec.to_json() for spec in info.modalities]
    if expected != received:
        raise run_dir_lib.RunError(
            f"{data_dir!r} has modalities {received}, but the model of {run_dir!r} was trained on {expected}"
        )
    labels_path = os.path.join(run_dir, run_dir_lib.LABELS)
    if os.path.exists(labels_path):
        with open(labels_path) as f:
            label_names = json.load(f)
        if label_names != list(info.label_names):
            raise run_dir_lib.RunError(
                f"{data_dir!r} has labels {list(info.label_names)}, but {run_dir!r} was trained on {label_names}"
            )
    test = pipeline.read_fold_split(data_dir, info, config.data.fold, "test").cache()
    return write_test_metrics(
        model, config, info, test, batching_for(info, config), run_dir_lib.best_epoch(run_dir), output_dir
    )


def batching_for(info: format_lib.DatasetInfo, config: configs.TrainConfig, *, fixed_shapes: bool = False) -> pipeline.Batching:
    """Batches grouped by the first LSTM modality's length (`Batching`'s sorted windows).

    `fixed_shapes` pads every batch to length boundaries from the dataset's quantiles (for an
    XLA-compiled step: few shapes to compile); otherwise each batch pads to its longest sequence
    (fewest encoder steps).
    """
    if not config.data.bucket_by_length:
        return pipeline.Batching(config.data.batch_size)
    boundaries = {}
    if fixed_shapes:
        minimum = {
            spec.name: max(config.model.text_cnn_kernel_sizes)
            for spec in info.modalities
            if spec.encoder is modalities_lib.EncoderKind.TEXT_CNN
        }
        boundaries = pipeline.length_boundaries(info, minimum)
    lstm = [spec.name for spec in info.modalities if spec.encoder is modalities_lib.EncoderKind.LSTM]
    return pipeline.Batching(
        config.data.batch_size, boundaries=boundaries,
        bucket_modality=lstm[0] if lstm else info.modalities[0].name,
    )


def evaluated_conditions(config: configs.TrainConfig, modalities) -> tuple[modalities_lib.Condition, ...]:
    """The conditions a run is validated and tested under: every evaluation condition (`a v t av at
    vt avt`), or MCTN's own only (one model per missing condition; it does not serve the others)."""
    if config.model.kind is configs.ModelKind.MCTN:
        return (modalities_lib.parse_condition(config.matched_condition, modalities),)
    return modalities_lib.evaluation_conditions(modalities)


def write_test_metrics(model, config: configs.TrainConfig, info, test_examples, batching, epoch: int, output_dir: str) -> dict:
    """Scores `model` on the test split under every evaluation condition (MCTN: its own;
    `evaluated_conditions`), and at every `config.evaluation_missing_rates`.

    Writes `confusion_matrices.json` and then `metrics.json` (which marks a run complete) into
    `output_dir` and returns the metrics: `{"model", "fold", "seed", "best_epoch", "conditions",
    "missing_mean", "missing_pooled"}` and, with missing rates, `"missing_rates": {rate: {"wa",
    "ua", "f1", "conditions": {condition: utterances scored under it}}}`.
    """
    modalities = info.modalities
    datasets = {
        condition.name: pipeline.make_evaluation_dataset(test_examples, modalities, condition, batching)
        for condition in evaluated_conditions(config, modalities)
    }
    predict = prediction_function(model, modalities)
    report, predictions = evaluate_conditions(predict, datasets, modalities, info.num_classes)
    result = {"model": config.model.kind.value, "fold": config.data.fold, "seed": config.seed,
              "best_epoch": epoch, **report}
    if config.evaluation_missing_rates:
        result["missing_rates"] = evaluate_missing_rates(
            predict, test_examples, modalities, info.num_classes, config.evaluation_missing_rates,
            config.missing_rate_seed, batching)
    os.makedirs(output_dir, exist_ok=True)
    write_json(os.path.join(output_dir, run_dir_lib.CONFUSION_MATRICES), confusion_matrices(predictions, info.label_names))
    write_json(os.path.join(output_dir, run_dir_lib.METRICS), result)
    return result
