"""End-to-end tests of `python -m mmin_tf.train` and of resuming a run."""

import json
import math
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver

from mmin_tf import configs, train
from mmin_tf import modalities as modalities_lib
from mmin_tf.data import format as format_lib
from mmin_tf.data import pipeline
from mmin_tf.training import RunError, run_training
from tests import tiny_runs

FLAGS = flags.FLAGS


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "tiny"
    tiny_runs.write_dataset(path)
    return str(path)


@pytest.fixture(scope="module")
def baseline_dir(data_dir, tmp_path_factory):
    output_dir = str(tmp_path_factory.mktemp("runs") / "baseline")
    run_training(tiny_runs.tiny_config(data_dir, output_dir))
    return output_dir


def _run_cli(**flag_values):
    if not FLAGS.is_parsed():
        FLAGS.mark_as_parsed()
    with flagsaver.flagsaver(**tiny_runs.TINY_FLAGS, **flag_values):
        train.main(["train"])
    with open(os.path.join(flag_values["output_dir"], "metrics.json")) as f:
        return json.load(f)


def _check_metrics(metrics, model, missing_expected=True):
    assert metrics["model"] == model
    assert metrics["fold"] == "1"
    assert metrics["seed"] == 0
    names = [c.name for c in modalities_lib.evaluation_conditions(tiny_runs.MODALITIES)]
    assert list(metrics["conditions"]) == names
    for values in metrics["conditions"].values():
        assert set(values) == {"wa", "ua", "f1"}
        assert all(0.0 <= value <= 1.0 for value in values.values())
    if missing_expected:
        assert set(metrics["missing_mean"]) == {"wa", "ua", "f1"}
        assert set(metrics["missing_pooled"]) == {"wa", "ua", "f1"}


def _check_run_dir(output_dir):
    for name in ("config.json", "flags.txt", "normalization.json", "best.keras", "best.json",
                 "metrics.json", "confusion_matrices.json"):
        assert os.path.exists(os.path.join(output_dir, name)), name
    assert not os.path.exists(os.path.join(output_dir, "backup"))
    event_files = [f for _, _, files in os.walk(os.path.join(output_dir, "logs")) for f in files]
    assert any("tfevents" in name for name in event_files)
    leftovers = [f for f in os.listdir(output_dir) if "incomplete" in f]
    assert leftovers == []


@pytest.mark.parametrize(
    "model, extra",
    [("baseline", {}), ("augmented", {}), ("matched", {"condition": "at"})],
)
def test_cli_trains_classifier_models(data_dir, tmp_path, model, extra):
    output_dir = str(tmp_path / model)
    metrics = _run_cli(data_dir=data_dir, output_dir=output_dir, model=configs.ModelKind(model), **extra)
    _check_metrics(metrics, model)
    _check_run_dir(output_dir)
    with open(os.path.join(output_dir, "flags.txt")) as f:
        assert f"--model={model}" in f.read()


def test_cli_mmin_trains_its_teacher_first(data_dir, tmp_path):
    output_dir = str(tmp_path / "mmin")
    metrics = _run_cli(data_dir=data_dir, output_dir=output_dir, model=configs.ModelKind.MMIN)
    _check_metrics(metrics, "mmin")
    _check_run_dir(output_dir)
    with open(os.path.join(output_dir, "teacher", "metrics.json")) as f:
        assert json.load(f)["model"] == "baseline"
    served = keras.saving.load_model(os.path.join(output_dir, "best.keras"))
    assert type(served).__name__ == "MMIN"


@pytest.mark.parametrize("model", ["mmin_ae", "mmin_nocycle"])
def test_cli_mmin_ablations_use_pretrained_dir(data_dir, baseline_dir, tmp_path, model):
    output_dir = str(tmp_path / model)
    metrics = _run_cli(
        data_dir=data_dir, output_dir=output_dir, model=configs.ModelKind(model), pretrained_dir=baseline_dir
    )
    _check_metrics(metrics, model)
    assert not os.path.exists(os.path.join(output_dir, "teacher"))


class _StopAfterEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.stop_epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.stop_epoch:
            raise KeyboardInterrupt("simulated kill")


class _RecordEpochs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []
        self.first_iteration = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)
        if self.first_iteration is None:
            self.first_iteration = int(self.model.optimizer.iterations.numpy())


class _FinalWeights(keras.callbacks.Callback):
    def on_train_end(self, logs=None):
        self.weights = [np.array(v) for v in self.model.variables]


def test_an_interrupted_run_resumes_and_ends_as_the_uninterrupted_one(data_dir, baseline_dir, tmp_path):
    """Killed after an epoch and run again, a run trains only the epochs left and ends with the
    weights, dropout generator states and test metrics of the run never interrupted: the data
    continue where they stopped and the dropout masks after the batches already trained. A backup
    torn by a kill while it was written falls back to the one before it, still exactly.
    (MMIN: dropout in the student and the classifier, a frozen teacher; the stream's skip in both
    condition modes is tested in tests/data/test_pipeline.py.)"""
    stage = configs.OptimizationConfig(epochs=2, decay_epochs=1, learning_rate=1e-3, beta_1=0.5, clip_norm=1.0)
    straight = _FinalWeights()
    expected = run_training(
        tiny_runs.tiny_config(
            data_dir, tmp_path / "straight", kind=configs.ModelKind.MMIN, optimization=stage,
            pretrained_dir=baseline_dir),
        extra_callbacks=[straight],
    )
    output_dir = tmp_path / "resumed"
    config = tiny_runs.tiny_config(
        data_dir, output_dir, kind=configs.ModelKind.MMIN, optimization=stage, pretrained_dir=baseline_dir)
    first = _RecordEpochs()
    with pytest.raises(KeyboardInterrupt):
        run_training(config, extra_callbacks=[first, _StopAfterEpoch(0)])
    assert first.epochs == [0]
    assert not (output_dir / "metrics.json").exists()
    second = _RecordEpochs()
    with pytest.raises(KeyboardInterrupt):
        run_training(config, extra_callbacks=[second, _StopAfterEpoch(1)])
    assert second.epochs == [1]  # resumed after the first epoch
    assert second.first_iteration > 0  # optimizer state came back too
    with open(output_dir / "backup" / "latest.weights.h5", "r+b") as f:
        f.truncate(100)  # as if killed while the second epoch's backup was written

    resumed, third = _FinalWeights(), _RecordEpochs()
    metrics = run_training(config, extra_callbacks=[resumed, third])

    assert third.epochs == [1, 2]  # from the backup before the torn one
    assert len(resumed.weights) == len(straight.weights)
    for after_resume, uninterrupted in zip(resumed.weights, straight.weights):
        np.testing.assert_array_equal(after_resume, uninterrupted)
    assert metrics == expected
    _check_metrics(metrics, "mmin")
    # A finished run is not trained again.
    again = _RecordEpochs()
    assert run_training(config, extra_callbacks=[again]) == metrics
    assert again.epochs == []


class _RecordBatches(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = []

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.append(0)

    def on_train_batch_end(self, batch, logs=None):
        self.batches[-1] += 1


@pytest.mark.parametrize("kind", [configs.ModelKind.AUGMENTED, configs.ModelKind.MMIN])
def test_one_iterator_serves_every_epoch_with_exact_epoch_lengths(data_dir, baseline_dir, tmp_path, kind):
    """The training dataset repeats and `fit` is told each epoch's length (so the next epoch's
    batches are prepared during this one's last steps, and no epoch boundary shifts)."""
    extra = {"pretrained_dir": baseline_dir} if kind.is_mmin else {}
    config = tiny_runs.tiny_config(data_dir, tmp_path / "run", kind=kind, **extra)
    record = _RecordBatches()
    run_training(config, extra_callbacks=[record])
    conditions = pipeline.training_conditions(config.resolved_condition_mode, tiny_runs.MODALITIES)
    utterances = sum(format_lib.load_info(data_dir).fold_counts["1"]["train"].values())
    # Augmented: every utterance under all 7 conditions; MMIN: one drawn condition per utterance.
    per_utterance = 1 if kind.is_mmin else len(conditions)
    expected = math.ceil(utterances * per_utterance / 16)
    assert record.params["steps"] == expected  # None for a dataset that ends without a known length
    assert record.batches == [expected] * config.optimization.total_epochs


def test_same_seed_same_result(data_dir, tmp_path):
    first = run_training(tiny_runs.tiny_config(data_dir, tmp_path / "a", seed=3))
    second = run_training(tiny_runs.tiny_config(data_dir, tmp_path / "b", seed=3))
    assert first == second


def test_mixed_precision_applies_to_its_own_run_only(data_dir, tmp_path):
    run_training(tiny_runs.tiny_config(data_dir, tmp_path / "mixed", mixed_precision=True))
    served = keras.saving.load_model(tmp_path / "mixed" / "best.keras")
    assert served.classifier.compute_dtype == "bfloat16"
    assert served.classifier.variable_dtype == "float32"
    assert keras.mixed_precision.global_policy().name == "float32"  # the next run builds float32


def test_pretrained_run_of_another_fold_is_refused(data_dir, baseline_dir, tmp_path):
    config = tiny_runs.tiny_config(
        data_dir, tmp_path / "mmin", kind=configs.ModelKind.MMIN, pretrained_dir=baseline_dir
    )
    config = config.__class__(**{**config.__dict__, "data": configs.DataConfig(data_dir=data_dir, fold="2", batch_size=16)})
    with pytest.raises(RunError, match="fold '1', not fold '2'"):
        run_training(config)


def test_pretrained_run_with_other_modalities_is_refused(data_dir, baseline_dir, tmp_path):
    specs = tiny_runs.MODALITIES[:2]
    other_data = tmp_path / "two_modalities"
    tiny_runs.write_dataset(other_data, modalities=specs)
    config = tiny_runs.tiny_config(
        other_data, tmp_path / "mmin", kind=configs.ModelKind.MMIN, pretrained_dir=baseline_dir
    )
    with pytest.raises(RunError, match="trained on modalities"):
        run_training(config)


def test_pretrained_dir_must_be_a_run(data_dir, tmp_path):
    config = tiny_runs.tiny_config(
        data_dir, tmp_path / "mmin", kind=configs.ModelKind.MMIN, pretrained_dir=str(tmp_path)
    )
    with pytest.raises(RunError, match="not an mmin_tf run directory"):
        run_training(config)


def test_changed_settings_in_an_existing_run_dir_are_refused(data_dir, baseline_dir):
    config = tiny_runs.tiny_config(data_dir, baseline_dir, seed=5)
    os.rename(os.path.join(baseline_dir, "metrics.json"), os.path.join(baseline_dir, "metrics.bak"))
    try:
        with pytest.raises(RunError, match=r"other settings \(differences in \['seed'\]\)"):
            run_training(config)
    finally:
        os.rename(os.path.join(baseline_dir, "metrics.bak"), os.path.join(baseline_dir, "metrics.json"))


def test_a_run_begun_before_a_setting_existed_resumes(data_dir, baseline_dir, tmp_path):
    """config.json written before `encoder_rows` existed: the missing field takes its default,
    which keeps the earlier computation, so the interrupted run resumes instead of being refused."""
    run_dir = tmp_path / "older"
    shutil.copytree(baseline_dir, run_dir)
    os.remove(run_dir / "metrics.json")  # interrupted
    with open(run_dir / "config.json") as f:
        stored = json.load(f)
    del stored["model"]["encoder_rows"]
    stored["output_dir"] = str(run_dir)  # as if it had been trained here
    with open(run_dir / "config.json", "w") as f:
        json.dump(stored, f)

    metrics = run_training(tiny_runs.tiny_config(data_dir, run_dir))

    assert os.path.exists(run_dir / "metrics.json") and "conditions" in metrics
    with open(run_dir / "config.json", "w") as f:
        f.write('{"model": {}}')
    os.remove(run_dir / "metrics.json")
    with pytest.raises(RunError, match=r"config.json' is not a readable run configuration"):
        run_training(tiny_runs.tiny_config(data_dir, run_dir))


def test_unknown_fold_is_refused(data_dir, tmp_path):
    config = tiny_runs.tiny_config(data_dir, tmp_path / "run")
    config = config.__class__(**{**config.__dict__, "data": configs.DataConfig(data_dir=data_dir, fold="99")})
    with pytest.raises(RunError, match="Fold '99' is not in"):
        run_training(config)


def test_matched_needs_a_condition():
    with pytest.raises(ValueError, match="matched_condition"):
        tiny_runs.tiny_config("d", "o", kind=configs.ModelKind.MATCHED)


def test_baseline_rejects_another_condition_mode():
    with pytest.raises(ValueError, match="--model=baseline trains on condition mode 'full'"):
        tiny_runs.tiny_config("d", "o", condition_mode=configs.ConditionMode.ALL)


def test_mmin_rejects_full_condition_training():
    with pytest.raises(ValueError, match="condition mode must be 'random' or 'all'"):
        tiny_runs.tiny_config("d", "o", kind=configs.ModelKind.MMIN, condition_mode=configs.ConditionMode.FULL)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--model=transformer"], "model"),
        (["--data_dir=/nonexistent/data"], "does not exist"),
    ],
)
def test_cli_bad_flags_exit_with_a_clear_error(tmp_path, arguments, message):
    command = [sys.executable, "-m", "mmin_tf.train", f"--output_dir={tmp_path / 'run'}"]
    if not any(a.startswith("--data_dir") for a in arguments):
        command.append(f"--data_dir={tmp_path}")
    result = subprocess.run(command + arguments, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize(
    "flagfile, expected",
    [
        ("pipelines/iemocap.flags", dict(forward_weight=4.0, selection="ua", lr=2e-4, beta_1=0.5, mode="random",
                                         initialization="original", epsilon=1e-8)),
        ("pipelines/iemocap_paper.flags", dict(forward_weight=0.1, selection="ua", lr=1e-3, beta_1=0.9, mode="all",
                                               initialization="original", epsilon=1e-8)),
        ("pipelines/msp_improv.flags", dict(forward_weight=2.0, selection="f1", lr=5e-4, beta_1=0.5, mode="random",
                                            initialization="original", epsilon=1e-8)),
        ("pipelines/demo.flags", dict(forward_weight=4.0, selection="ua", lr=1e-3, beta_1=0.5, mode="random",
                                      initialization="keras", epsilon=1e-7)),
    ],
)
def test_flagfiles_parse_into_the_documented_settings(flagfile, expected):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cwd = os.getcwd()
    os.chdir(root)  # flagfiles nest with paths relative to the repository root
    try:
        with flagsaver.flagsaver():
            FLAGS(["train", f"--flagfile={flagfile}", "--output_dir=/tmp/unused"])
            config = train.config_from_flags()
    finally:
        os.chdir(cwd)
    with open(os.path.join(root, flagfile)) as f:
        assert f.readline().startswith("# ")
    assert config.losses.forward_weight == expected["forward_weight"]
    assert config.selection_metric.value == expected["selection"]
    assert config.optimization.learning_rate == expected["lr"]
    assert config.optimization.beta_1 == expected["beta_1"]
    assert config.resolved_condition_mode.value == expected["mode"]
    assert config.model.initialization.value == expected["initialization"]
    assert config.optimization.epsilon == expected["epsilon"]


@pytest.mark.parametrize("arguments, expected", [
    ([], configs.EncoderRows.AUTO), (["--encoder_rows=all"], configs.EncoderRows.ALL),
    (["--encoder_rows=present"], configs.EncoderRows.PRESENT),
])
def test_encoder_rows_flag_reaches_the_model_config(arguments, expected):
    with flagsaver.flagsaver():
        FLAGS(["train", "--data_dir=/tmp/unused", "--output_dir=/tmp/unused", *arguments])
        config = train.config_from_flags()
    assert config.model.encoder_rows is expected
    assert configs.TrainConfig.from_json(config.to_json()) == config  # through config.json and back


def test_fresh_start_forgets_a_stale_best_epoch(data_dir, tmp_path):
    output_dir = tmp_path / "stale"
    output_dir.mkdir()
    (output_dir / "best.json").write_text(json.dumps({"epoch": 9, "value": 2.0, "metric": "ua"}))
    metrics = run_training(tiny_runs.tiny_config(data_dir, output_dir))
    best = json.loads((output_dir / "best.json").read_text())
    assert best["value"] <= 1.0 and best["epoch"] in (1, 2)
    assert metrics["best_epoch"] == best["epoch"]


def test_profile_batch_writes_a_profiler_trace(data_dir, tmp_path):
    output_dir = tmp_path / "profiled"
    run_training(tiny_runs.tiny_config(data_dir, output_dir, profile_batch=(1, 2)))
    traces = [
        os.path.join(root, name)
        for root, _, files in os.walk(output_dir / "logs")
        for name in files
        if name.endswith(".xplane.pb")
    ]
    assert traces and all("plugins/profile" in path for path in traces)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_batches_pad_to_fixed_shapes_only_for_an_xla_step(data_dir, tmp_path, monkeypatch, jit_compile):
    """XLA compiles once per shape: its batches pad to the bucket boundaries; otherwise to the longest."""
    from mmin_tf import training

    chosen = []
    original = training.batching_for

    def recording(info, config, **kwargs):
        batching = original(info, config, **kwargs)
        chosen.append(batching)
        return batching

    monkeypatch.setattr(training, "batching_for", recording)
    metrics = run_training(tiny_runs.tiny_config(data_dir, tmp_path / "run", jit_compile=jit_compile))
    _check_metrics(metrics, "baseline", missing_expected=False)
    assert chosen and all(bool(batching.boundaries) is jit_compile for batching in chosen)
    assert all(batching.bucket_modality == "acoustic" for batching in chosen)  # grouped either way
