"""`evaluate_run` / `python -m mmin_tf.evaluate` reproduce a run's metrics.json and check the data."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import pytest

from mmin_tf import configs
from mmin_tf.evaluation import evaluate_run
from mmin_tf.training import RunError, run_training
from tests import tiny_runs


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(data_dir, run_dir) of a finished tiny matched baseline (condition at)."""
    root = tmp_path_factory.mktemp("evaluate")
    data_dir = str(root / "data")
    tiny_runs.write_dataset(data_dir)
    run_dir = str(root / "matched")
    config = tiny_runs.tiny_config(data_dir, run_dir)  # tiny_config cannot build a matched one
    config = dataclasses.replace(
        config, model=dataclasses.replace(config.model, kind=configs.ModelKind.MATCHED), matched_condition="at"
    )
    run_training(config)
    return data_dir, run_dir


def _read(directory, name):
    with open(os.path.join(directory, name)) as f:
        return json.load(f)


def test_evaluation_reproduces_the_training_metrics(trained, tmp_path):
    _, run_dir = trained
    result = evaluate_run(run_dir, output_dir=str(tmp_path))
    assert result == _read(run_dir, "metrics.json")
    assert _read(tmp_path, "metrics.json") == result
    assert _read(tmp_path, "confusion_matrices.json") == _read(run_dir, "confusion_matrices.json")
    assert list(result["conditions"]) == ["a", "v", "t", "av", "at", "vt", "avt"]
    assert result["best_epoch"] == _read(run_dir, "best.json")["epoch"]


def test_cli_writes_into_the_run_dir_by_default(trained, tmp_path):
    data_dir, run_dir = trained
    copy = str(tmp_path / "run")
    shutil.copytree(run_dir, copy)
    os.remove(os.path.join(copy, "metrics.json"))
    os.remove(os.path.join(copy, "confusion_matrices.json"))
    completed = subprocess.run(
        [sys.executable, "-m", "mmin_tf.evaluate", f"--run_dir={copy}", f"--data_dir={data_dir}"],
        capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert _read(copy, "metrics.json") == _read(run_dir, "metrics.json")
    assert _read(copy, "confusion_matrices.json") == _read(run_dir, "confusion_matrices.json")


def _altered_dataset(data_dir, tmp_path, change):
    copy = tmp_path / "altered"
    shutil.copytree(data_dir, copy)
    info = _read(copy, "dataset.json")
    change(info)
    with open(copy / "dataset.json", "w") as f:
        json.dump(info, f)
    return str(copy)


def test_data_with_other_modalities_or_labels_is_refused(trained, tmp_path):
    data_dir, run_dir = trained

    def wider_text(info):
        info["modalities"][2]["feature_dim"] = 9

    other = _altered_dataset(data_dir, tmp_path / "modalities", wider_text)
    with pytest.raises(RunError, match="but the model of .* was trained on"):
        evaluate_run(run_dir, other, output_dir=str(tmp_path / "out"))

    def renamed(info):
        info["label_names"] = ["w", "x", "y", "z"]

    other = _altered_dataset(data_dir, tmp_path / "labels", renamed)
    with pytest.raises(RunError, match=r"has labels \['w', 'x', 'y', 'z'\]"):
        evaluate_run(run_dir, other, output_dir=str(tmp_path / "out"))


def test_other_data_needs_an_output_dir(trained, tmp_path):
    _, run_dir = trained
    with pytest.raises(RunError, match="would replace the run's metrics.json"):
        evaluate_run(run_dir, str(tmp_path))


def test_unfinished_or_foreign_directories_are_refused(trained, tmp_path):
    _, run_dir = trained
    with pytest.raises(RunError, match="not an mmin_tf run directory"):
        evaluate_run(str(tmp_path))
    os.makedirs(tmp_path / "started")
    shutil.copy(os.path.join(run_dir, "config.json"), tmp_path / "started")
    with pytest.raises(RunError, match="has no best model yet"):
        evaluate_run(str(tmp_path / "started"))


def test_config_json_round_trip(tmp_path):
    config = tiny_runs.tiny_config(
        "data", tmp_path, kind=configs.ModelKind.MMIN, condition_mode=configs.ConditionMode.ALL,
        pretrained_dir="teacher", profile_batch=(2, 3),
    )
    assert configs.TrainConfig.from_json(config.to_json()) == config
