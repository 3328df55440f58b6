"""The files of a training run directory and reading them back.

A run directory (`python -m mmin_tf.train --output_dir=...`) holds:

    config.json                the run's TrainConfig (`load_run_config`)
    best.keras, best.json      the model of the best validation epoch and that epoch's state
    metrics.json               the test metrics; written last, so it marks a run complete
    confusion_matrices.json    test confusion matrices per condition
    normalization.json         feature statistics of the training split (when normalising)
    labels.json, extraction.json   label names; the feature extraction settings of the dataset
"""

from __future__ import annotations

import json
import os

METRICS = "metrics.json"
CONFIG = "config.json"
BEST_MODEL = "best.keras"
BEST_STATE = "best.json"
CONFUSION_MATRICES = "confusion_matrices.json"
NORMALIZATION = "normalization.json"
LABELS = "labels.json"
EXTRACTION = "extraction.json"


class RunError(ValueError):
    """A run directory or pretrained run that cannot be used as asked."""


def load_run_config(run_dir: str) -> dict:
    """The JSON of `run_dir`'s config.json (a `TrainConfig.to_json()`)."""
    path = os.path.join(run_dir, CONFIG)
    if not os.path.exists(path):
        raise RunError(f"{run_dir!r} is not an mmin_tf run directory: {CONFIG} not found")
    with open(path) as f:
        return json.load(f)


def best_epoch(run_dir: str) -> int:
    """The epoch whose model is `best.keras`, from `best.json`."""
    with open(os.path.join(run_dir, BEST_STATE)) as f:
        return json.load(f)["epoch"]
