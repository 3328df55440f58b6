"""Predicting and scoring a model on evaluation datasets, one per test condition."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf

from mmin_tf import metrics as metrics_lib
from mmin_tf import modalities as modalities_lib


def prediction_function(model, modalities: Sequence[modalities_lib.ModalitySpec]):
    """A traced `inputs -> probabilities (batch, classes)` with one signature for every shape."""
    signature = {}
    for spec in modalities:
        signature[spec.name] = tf.TensorSpec([None, None, spec.feature_dim], tf.float32)
        signature[spec.length_key] = tf.TensorSpec([None], tf.int32)

    @tf.function(input_signature=[signature])
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
    report = metrics_lib.condition_report(
        {name: (labels, probs.argmax(-1)) for name, (labels, probs, _) in predictions.items()},
        [condition.name for condition in modalities_lib.missing_conditions(modalities)],
        num_classes,
    )
    return report, predictions
