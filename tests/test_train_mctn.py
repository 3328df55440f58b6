"""`python -m mmin_tf.train --model=mctn --condition=...` end to end on tiny data, and its bad flags."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from absl.testing import flagsaver

from mmin_tf import configs, evaluation, export, train
from mmin_tf.models import MCTN
from mmin_tf.training import RunError, run_training
from tests import tiny_runs

FLAGS = flags.FLAGS
TINY_MCTN = configs.MCTNConfig(steps=3, hidden_size=4)  # few steps: the decoders are unrolled


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "tiny"
    tiny_runs.write_dataset(path)
    return str(path)


@pytest.fixture(scope="module")
def run_dir(data_dir, tmp_path_factory):
    output_dir = str(tmp_path_factory.mktemp("runs") / "mctn_at")
    run_training(tiny_runs.tiny_config(
        data_dir, output_dir, kind=configs.ModelKind.MCTN, matched_condition="at", mctn=TINY_MCTN))
    return output_dir


def _read(path):
    with open(path) as f:
        return json.load(f)


def test_a_run_trains_and_tests_its_condition_only(run_dir, data_dir):
    metrics = _read(os.path.join(run_dir, "metrics.json"))
    assert metrics["model"] == "mctn" and metrics["fold"] == "1"
    assert list(metrics["conditions"]) == ["at"]
    assert all(0.0 <= value <= 1.0 for value in metrics["conditions"]["at"].values())
    assert metrics["missing_pooled"] == metrics["conditions"]["at"]  # pooled over its one condition
    assert list(_read(os.path.join(run_dir, "confusion_matrices.json"))["conditions"]) == ["at"]
    config = _read(os.path.join(run_dir, "config.json"))
    assert config["mctn"] == {"steps": 3, "hidden_size": 4, "translation_weight": 0.1, "cycle_weight": 0.1,
                              "second_translation_weight": 0.1}
    assert configs.TrainConfig.from_json(config).mctn == TINY_MCTN
    served = keras.saving.load_model(os.path.join(run_dir, "best.keras"))
    assert isinstance(served, MCTN) and served.condition == "at"  # no decoder, no loss: only the served model
    assert not any("decoder" in variable.path for variable in served.variables)
    # The evaluation entry point scores it the same way again.
    assert evaluation.evaluate_run(run_dir, output_dir=os.path.join(run_dir, "again")) == metrics


def test_the_exported_model_serves_its_condition(run_dir, tmp_path):
    version_dir = export.export_run(run_dir, str(tmp_path / "mctn"), warmup=False)
    served = keras.saving.load_model(os.path.join(run_dir, "best.keras"))
    rng = np.random.default_rng(0)
    inputs = {}
    for spec, length in zip(tiny_runs.MODALITIES, (5, 0, 3)):  # visual missing: condition at
        inputs[spec.name] = tf.constant(rng.normal(size=(2, 5, spec.feature_dim)), tf.float32)
        inputs[spec.length_key] = tf.constant([length, max(length - 1, 0)], tf.int32)
    outputs = tf.saved_model.load(version_dir).signatures["serving_default"](**inputs)
    expected = tf.nn.softmax(served(inputs)["logits"]).numpy()
    np.testing.assert_allclose(outputs["probabilities"].numpy(), expected, atol=1e-5)
    assert outputs["condition"].numpy().tolist() == [b"at", b"at"]


def test_the_full_condition_is_refused_before_training(data_dir, tmp_path):
    config = tiny_runs.tiny_config(data_dir, tmp_path / "avt", kind=configs.ModelKind.MCTN, matched_condition="avt")
    with pytest.raises(RunError, match="the full condition 'avt' has none missing"):
        run_training(config)
    assert not (tmp_path / "avt" / "config.json").exists()


def _cli(**flag_values):
    if not FLAGS.is_parsed():
        FLAGS.mark_as_parsed()
    with flagsaver.flagsaver(**tiny_runs.TINY_FLAGS, **flag_values):
        train.main(["train"])


def test_cli_bad_flags(data_dir, tmp_path):
    with pytest.raises(ValueError, match="--model=mctn trains one model per missing-modality condition"):
        _cli(data_dir=data_dir, output_dir=str(tmp_path / "none"), model=configs.ModelKind.MCTN)
    with pytest.raises(RunError, match="the full condition 'avt' has none missing"):
        _cli(data_dir=data_dir, output_dir=str(tmp_path / "full"), model=configs.ModelKind.MCTN, condition="avt")
    with pytest.raises(ValueError, match="tested under its own condition only"):
        _cli(data_dir=data_dir, output_dir=str(tmp_path / "rates"), model=configs.ModelKind.MCTN, condition="at",
             missing_rates=["0.5"])


def test_flags_reach_the_config():
    with flagsaver.flagsaver():
        FLAGS(["train", "--data_dir=/tmp/unused", "--output_dir=/tmp/unused", "--model=mctn", "--condition=v",
               "--mctn_steps=7", "--mctn_hidden_size=9", "--mctn_cycle_weight=0.5", "--ce_weight=2"])
        config = train.config_from_flags()
    assert config.mctn == configs.MCTNConfig(steps=7, hidden_size=9, cycle_weight=0.5)
    assert config.losses.classification_weight == 2.0
    assert config.optimization == configs.MCTN_OPTIMIZATION
    assert config.matched_condition == "v"
    assert config.resolved_condition_mode is configs.ConditionMode.MATCHED
    assert configs.TrainConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError, match="`steps` must be positive"):
        configs.MCTNConfig(steps=0)
    with pytest.raises(ValueError, match="`cycle_weight` must be >= 0"):
        configs.MCTNConfig(cycle_weight=-1.0)
