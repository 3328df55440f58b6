"""Keras callbacks of the training loop: per-condition validation, best-model selection, timing."""

from __future__ import annotations

import json
import os
import time
from typing import Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from mmin_tf import atomic_files, evaluation
from mmin_tf import metrics as metrics_lib
from mmin_tf import modalities as modalities_lib


class EpochTimer(keras.callbacks.Callback):
    """Adds `epoch_seconds` (wall time of the training part of the epoch) to the logs."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self._start


class ConditionValidation(keras.callbacks.Callback):
    """Scores the served model on the validation split under every condition, every epoch.

    Adds `val_<condition>_<wa|ua|f1>`, `val_missing_pooled_<metric>` and `val_selection` to the
    epoch logs (TensorBoard's callback, placed after this one, writes them to the validation
    run). `val_selection` is the selection metric pooled over `selection_conditions` (the
    conditions the model trains on); when it improves strictly, the served model is saved to
    `best_path` and the epoch recorded in `state_path`, which also lets a resumed run continue
    the comparison.

    Args:
        served_model: the model that will be exported (not the trainer).
        datasets: condition name -> evaluation dataset of the validation split.
        selection_conditions: names whose pooled predictions give `val_selection`.
        selection_metric: "wa", "ua" or "f1".
        modalities, num_classes: of the dataset.
        best_path: `.keras` file of the best model.
        state_path: JSON with the best epoch and value.
    """

    def __init__(
        self,
        served_model: keras.Model,
        datasets: Mapping[str, tf.data.Dataset],
        selection_conditions: Sequence[str],
        selection_metric: str,
        modalities: Sequence[modalities_lib.ModalitySpec],
        num_classes: int,
        best_path: str,
        state_path: str,
    ):
        super().__init__()
        self.served_model = served_model
        self.datasets = datasets
        self.selection_conditions = tuple(selection_conditions)
        self.selection_metric = selection_metric
        self.modalities = tuple(modalities)
        self.num_classes = num_classes
        self.best_path = best_path
        self.state_path = state_path
        self.predict = evaluation.prediction_function(served_model, self.modalities)
        self.best = {"epoch": 0, "value": -np.inf}

    def on_train_begin(self, logs=None):
        if os.path.exists(self.state_path):
            with open(self.state_path) as f:
                self.best = json.load(f)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        report, predictions = evaluation.evaluate_conditions(
            self.predict, self.datasets, self.modalities, self.num_classes
        )
        for name, values in report["conditions"].items():
            for key, value in values.items():
                logs[f"val_{name}_{key}"] = value
        for key, value in report.get("missing_pooled", {}).items():
            logs[f"val_missing_pooled_{key}"] = value
        labels = np.concatenate([predictions[name][0] for name in self.selection_conditions])
        predicted = np.concatenate([predictions[name][1].argmax(-1) for name in self.selection_conditions])
        value = metrics_lib.classification_metrics(labels, predicted, self.num_classes)[self.selection_metric]
        logs["val_selection"] = value
        if value > self.best["value"]:
            with atomic_files.replacing(self.best_path, suffix=".keras") as temporary:
                self.served_model.save(temporary)
            self.best = {"epoch": epoch + 1, "value": float(value), "metric": self.selection_metric}
            atomic_files.write_json(self.state_path, self.best)
        logging.info(
            "epoch %d: validation %s over %s = %.4f (best %.4f at epoch %d)",
            epoch + 1, self.selection_metric, "/".join(self.selection_conditions),
            value, self.best["value"], self.best["epoch"],
        )
