"""Training and testing on data that really lack modalities, and the missing-rate protocol."""

import json

import numpy as np
import pytest

from mmin_tf import configs
from mmin_tf.data import format as format_lib
from mmin_tf.data import synthetic
from mmin_tf.data.writer import DatasetWriter
from mmin_tf.training import RunError, run_training
from tests import tiny_runs


@pytest.fixture(scope="module")
def incomplete_data(tmp_path_factory):
    """The tiny synthetic corpus (60 utterances, 6 per speaker) with the visual modality absent
    from 2 utterances of every speaker: a third of every split."""
    data_dir = str(tmp_path_factory.mktemp("incomplete") / "data")
    config = synthetic.SyntheticConfig(num_utterances=60, modalities=tiny_runs.MODALITIES,
                                       mean_lengths=tuple((spec.name, 6) for spec in tiny_runs.MODALITIES), seed=0)
    with DatasetWriter(data_dir, name="incomplete", modalities=tiny_runs.MODALITIES,
                       label_names=synthetic.IEMOCAP_LABEL_NAMES, utterances_per_shard=16) as writer:
        for index, utterance in enumerate(synthetic.generate(config)):
            if index // 10 in (1, 4):  # the synthetic corpus cycles through the 10 speakers
                utterance = format_lib.Utterance(**{**utterance.__dict__, "features": {
                    k: v for k, v in utterance.features.items() if k != "visual"}})
            writer.write(utterance)
        info = writer.finish()
    assert info.presence["visual"] == 40
    for fold, splits in info.fold_presence.items():
        for split, counts in splits.items():
            size = sum(info.fold_counts[fold][split].values())
            assert counts["visual"] == size * 2 // 3 and counts["acoustic"] == size
    return data_dir


@pytest.mark.parametrize("kind", [configs.ModelKind.MMIN, configs.ModelKind.AUGMENTED])
def test_models_train_and_test_on_incomplete_data(incomplete_data, tmp_path, kind):
    config = tiny_runs.tiny_config(incomplete_data, tmp_path / kind.value, kind=kind, evaluation_missing_rates=(0.3, 0.7))
    metrics = run_training(config)
    assert set(metrics["conditions"]) == {"a", "v", "t", "av", "at", "vt", "avt"}
    assert all(np.isfinite(values["ua"]) for values in metrics["conditions"].values())
    rates = metrics["missing_rates"]
    assert list(rates) == ["0.3", "0.7"]
    test_size = sum(format_lib.load_info(incomplete_data).fold_counts["1"]["test"].values())
    assert sum(rates["0.3"]["conditions"].values()) == test_size
    # More is dropped at 0.7 than at 0.3: fewer utterances keep every modality.
    assert rates["0.7"]["conditions"].get("avt", 0) <= rates["0.3"]["conditions"].get("avt", 0)
    with open(tmp_path / kind.value / "metrics.json") as f:
        assert json.load(f)["missing_rates"] == rates


def test_every_model_is_scored_on_the_same_masks(incomplete_data, tmp_path):
    first = run_training(tiny_runs.tiny_config(incomplete_data, tmp_path / "a", evaluation_missing_rates=(0.5,)))
    second = run_training(tiny_runs.tiny_config(incomplete_data, tmp_path / "b", seed=3, evaluation_missing_rates=(0.5,)))
    assert first["missing_rates"]["0.5"]["conditions"] == second["missing_rates"]["0.5"]["conditions"]


def test_train_missing_rates_drop_training_modalities(tmp_path):
    tiny_runs.write_dataset(tmp_path / "data")
    config = tiny_runs.tiny_config(tmp_path / "data", tmp_path / "mmin", kind=configs.ModelKind.MMIN,
                                   train_missing_rates=(("acoustic", 0.2), ("visual", 0.5)))
    metrics = run_training(config)
    assert np.isfinite(metrics["missing_pooled"]["ua"])
    with open(tmp_path / "mmin" / "teacher" / "config.json") as f:
        assert json.load(f)["train_missing_rates"] == [["acoustic", 0.2], ["visual", 0.5]]
    with pytest.raises(RunError, match=r"--train_missing_rate names modalities \['smell'\]"):
        run_training(tiny_runs.tiny_config(tmp_path / "data", tmp_path / "bad", train_missing_rates=(("smell", 0.1),)))


@pytest.mark.parametrize("kwargs, match", [
    (dict(train_missing_rates=(("visual", 1.0),)), r"must be in \[0, 1\)"),
    (dict(train_missing_rates=(("visual", 0.1), ("visual", 0.2))), "names a modality twice"),
    (dict(evaluation_missing_rates=(0.0,)), r"must be in \(0, 1\)"),
    (dict(evaluation_missing_rates=(0.5, 0.2)), "increasing and distinct"),
])
def test_bad_missing_rates(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny_runs.tiny_config(tmp_path, tmp_path / "x", **kwargs)
