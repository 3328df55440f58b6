"""Emotion recognition metrics: WA (accuracy), UA (macro recall), macro F1, confusion matrices.

Computed with scikit-learn on class ids, as the original code does, so numbers are comparable.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from sklearn import metrics as sk_metrics


def classification_metrics(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> dict:
    """`{"wa", "ua", "f1"}` for int class ids `labels`, `predictions` `(n,)`.

    WA = accuracy; UA = unweighted mean of per-class recall; F1 = macro F1; both macro averages
    run over the classes that occur in labels or predictions, with 0 for an undefined ratio:
    scikit-learn's defaults, which the original code uses, so the numbers are comparable.
    """
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    if labels.shape != predictions.shape or labels.ndim != 1 or labels.size == 0:
        raise ValueError(
            f"Expected equal, non-empty 1-D labels and predictions. Received shapes "
            f"{labels.shape} and {predictions.shape}"
        )
    present = np.union1d(labels, predictions)
    if present.min() < 0 or present.max() >= num_classes:
        raise ValueError(f"Class ids must be in [0, {num_classes}). Received: {present.tolist()}")
    return {
        "wa": float(sk_metrics.accuracy_score(labels, predictions)),
        "ua": float(sk_metrics.recall_score(labels, predictions, average="macro", labels=present, zero_division=0)),
        "f1": float(sk_metrics.f1_score(labels, predictions, average="macro", labels=present, zero_division=0)),
    }


def metrics_from_confusion(matrix) -> dict:
    """`{"wa", "ua", "f1"}` of the predictions a confusion matrix counts (rows true classes).

    Exactly `classification_metrics` of those labels and predictions: the macro averages run over
    the classes that occur (a non-zero row or column), with 0 for an undefined ratio. Summing the
    matrices of several test sets and scoring the sum is scoring the sets pooled.
    """
    matrix = np.asarray(matrix, np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.sum() <= 0 or (matrix < 0).any():
        raise ValueError(f"Expected a square, non-empty matrix of counts. Received shape {matrix.shape}")
    hits = np.diag(matrix)
    true, predicted = matrix.sum(axis=1), matrix.sum(axis=0)
    present = (true > 0) | (predicted > 0)
    recall = np.divide(hits, true, out=np.zeros_like(hits), where=true > 0)
    f1 = np.divide(2 * hits, true + predicted, out=np.zeros_like(hits), where=(true + predicted) > 0)
    return {
        "wa": float(hits.sum() / matrix.sum()),
        "ua": float(recall[present].mean()),
        "f1": float(f1[present].mean()),
    }


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """`(num_classes, num_classes)` counts; rows are true classes."""
    return sk_metrics.confusion_matrix(labels, predictions, labels=np.arange(num_classes))


def condition_report(
    per_condition: Mapping[str, tuple[np.ndarray, np.ndarray]],
    missing_conditions: Sequence[str],
    num_classes: int,
) -> dict:
    """Metrics per condition plus the two summaries of the missing conditions.

    Args:
        per_condition: condition name -> (labels, predictions).
        missing_conditions: names of the missing conditions among them (`a v t av at vt`).

    Returns:
        `{"conditions": {name: {wa, ua, f1}}, "missing_mean": {...}, "missing_pooled": {...}}`:
        `missing_mean` averages the six conditions' metrics; `missing_pooled` computes the metrics
        on the six test sets pooled, the original code's "total" and the paper's "Average".
    """
    conditions = {
        name: classification_metrics(labels, predictions, num_classes)
        for name, (labels, predictions) in per_condition.items()
    }
    report = {"conditions": conditions}
    missing = [name for name in missing_conditions if name in per_condition]
    if missing:
        report["missing_mean"] = {
            key: float(np.mean([conditions[name][key] for name in missing])) for key in ("wa", "ua", "f1")
        }
        report["missing_pooled"] = classification_metrics(
            np.concatenate([per_condition[name][0] for name in missing]),
            np.concatenate([per_condition[name][1] for name in missing]),
            num_classes,
        )
    return report
