"""The experiment plan, and `python -m mmin_tf.experiment` end to end: runs, resume, tables."""

import importlib
import json
import os

import pytest
from absl import app, flags
from absl.testing import flagsaver

from mmin_tf import distribution, experiment_plan
from mmin_tf.configs import ModelKind
from mmin_tf.training import RunError
from tests import tiny_runs

FLAGS = flags.FLAGS


# The plan: no training.

def test_plan_orders_baselines_first_and_gives_mmin_its_teacher(tmp_path):
    runs = experiment_plan.plan_runs(["mmin", "augmented"], ["1", "2"], [0, 1], str(tmp_path))
    assert [(r.key, r.fold, r.seed) for r in runs[:4]] == [
        ("baseline", "1", 0), ("baseline", "1", 1), ("baseline", "2", 0), ("baseline", "2", 1)]
    assert [r.key for r in runs[4:]] == ["mmin"] * 4 + ["augmented"] * 4
    mmin = runs[5]
    assert mmin.output_dir == str(tmp_path / "runs" / "mmin" / "fold1" / "seed1")
    assert mmin.pretrained_dir == str(tmp_path / "runs" / "baseline" / "fold1" / "seed1")
    assert mmin.log_path == mmin.output_dir + ".log"
    assert mmin.train_arguments() == [
        "--model=mmin", "--fold=1", "--seed=1", f"--output_dir={mmin.output_dir}",
        f"--pretrained_dir={mmin.pretrained_dir}"]
    assert all(r.pretrained_dir is None for r in runs if not r.model.is_mmin)


def test_matched_expands_to_one_baseline_per_condition():
    keys = experiment_plan.model_keys(["baseline", "matched"], tiny_runs.MODALITIES)
    assert keys == ("baseline", "matched_a", "matched_v", "matched_t", "matched_av", "matched_at",
                    "matched_vt", "matched_avt")
    assert experiment_plan.model_keys(["matched_ta"], tiny_runs.MODALITIES) == ("matched_at",)
    run = experiment_plan.plan_runs(["matched_at"], ["1"], [0], "out")[0]
    assert (run.model, run.condition, run.output_dir) == (
        ModelKind.MATCHED, "at", os.path.join("out", "runs", "matched_at", "fold1", "seed0"))
    assert "--condition=at" in run.train_arguments()


@pytest.mark.parametrize(
    "entries, message",
    [(["transformer"], "Unknown model 'transformer'"), (["mmin", "mmin"], "more than once"),
     (["matched_ax"], "distinct modality letters"), ([], "at least one model")],
)
def test_bad_models_are_refused(entries, message):
    with pytest.raises(ValueError, match=message):
        experiment_plan.model_keys(entries, tiny_runs.MODALITIES)


def test_folds_and_seeds():
    assert experiment_plan.resolve_folds(["all"], ("1", "2", "3")) == ("1", "2", "3")
    assert experiment_plan.resolve_folds(["3", "1"], ("1", "2", "3")) == ("3", "1")
    with pytest.raises(ValueError, match=r"folds of the dataset \(\['1', '2'\]\)"):
        experiment_plan.resolve_folds(["1", "7"], ("1", "2"))
    with pytest.raises(ValueError, match="more than once"):
        experiment_plan.resolve_folds(["1", "1"], ("1", "2"))
    assert experiment_plan.seed_values(3) == (0, 1, 2)
    with pytest.raises(ValueError, match="`seeds` must be >= 1"):
        experiment_plan.seed_values(0)


def test_shards_split_the_plan_and_keep_mmin_with_its_teacher():
    runs = experiment_plan.plan_runs(["baseline", "augmented", "mmin"], ["1", "2", "3"], [0], "out")
    shards = [experiment_plan.shard(runs, 4, i) for i in range(4)]
    assert sorted(r.output_dir for s in shards for r in s) == sorted(r.output_dir for r in runs)
    for runs_of_shard in shards:
        assert runs_of_shard  # 9 runs over 4 shards
        dirs = [r.output_dir for r in runs_of_shard]
        for run in runs_of_shard:
            if run.pretrained_dir:
                assert dirs.index(run.pretrained_dir) < dirs.index(run.output_dir)
    with pytest.raises(ValueError, match="0 <= shard_index < num_shards"):
        experiment_plan.shard(runs, 2, 2)
    with pytest.raises(ValueError, match="is not in the plan"):
        experiment_plan.shard([r for r in runs if r.key != "baseline"], 2, 0)


def test_a_failing_run_stops_with_its_log(tmp_path, monkeypatch):
    monkeypatch.setattr(experiment_plan.sys, "executable", "false")  # exits 1 at once
    runs = experiment_plan.plan_runs(["baseline"], ["1"], [0, 1], str(tmp_path))
    with pytest.raises(RunError, match=r"seed0' failed \(exit code 1\); see its log .*seed0.log"):
        experiment_plan.execute(runs, "experiment.flags")
    with open(runs[0].log_path) as f:
        assert "-m mmin_tf.train --flagfile=experiment.flags --model=baseline" in f.read()
    assert not os.path.exists(runs[1].log_path)


# The entry point.

@pytest.fixture
def experiment():
    """mmin_tf.experiment (imported here, after the module-level test data are built)."""
    return importlib.import_module("mmin_tf.experiment")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("experiment_data") / "tiny"
    tiny_runs.write_dataset(path)
    return str(path)


def _main(experiment, **flag_values):
    if not FLAGS.is_parsed():
        FLAGS.mark_as_parsed()
    with flagsaver.flagsaver(**tiny_runs.TINY_FLAGS, **flag_values):
        experiment.main(["experiment"])


def _read(path):
    with open(path) as f:
        return json.load(f)


def test_experiment_runs_resumes_and_aggregates(experiment, data_dir, tmp_path, monkeypatch):
    output_dir = str(tmp_path / "experiment")
    settings = dict(data_dir=data_dir, output_dir=output_dir, models=["baseline", "mmin"], folds=["1"], seeds=1,
                    model=ModelKind.AUGMENTED, fold="7", seed=5)  # per-run flags: overridden
    _main(experiment, **settings)
    baseline, mmin = (os.path.join(output_dir, "runs", key, "fold1", "seed0") for key in ("baseline", "mmin"))
    assert _read(os.path.join(mmin, "config.json"))["pretrained_dir"] == baseline
    assert _read(os.path.join(mmin, "config.json"))["model"]["embedding_size"] == 8  # TINY_FLAGS forwarded
    assert _read(os.path.join(baseline, "metrics.json"))["model"] == "baseline"
    with open(os.path.join(output_dir, "experiment.flags")) as f:
        shared = f.read().splitlines()
    assert "--epochs=1" in shared and "--embedding_size=8" in shared
    assert not [line for line in shared if line.split("=")[0] in ("--model", "--fold", "--seed", "--output_dir")]
    results = _read(os.path.join(output_dir, "results.json"))
    assert list(results["models"]) == ["baseline", "mmin"]
    assert results["metrics"] == ["wa", "ua"]
    assert results["models"]["mmin"]["columns"]["average"]["ua"]["values"] == [
        _read(os.path.join(mmin, "metrics.json"))["missing_pooled"]["ua"]]
    assert results["significance"]["mmin"]["average"]["ua"] == {"vs_baseline": None, "vs_augmented": None}
    with open(os.path.join(output_dir, "results.md")) as f:
        assert "| MMIN | UA |" in f.read()
    assert os.path.exists(os.path.join(output_dir, "results.csv"))

    # Interrupted: the baseline's metrics.json never written, results not aggregated yet.
    os.remove(os.path.join(baseline, "metrics.json"))
    os.remove(os.path.join(output_dir, "results.json"))
    mmin_metrics_time = os.path.getmtime(os.path.join(mmin, "metrics.json"))
    with open(mmin + ".log") as f:
        mmin_log = f.read()
    calls = []
    monkeypatch.setattr(experiment.figures, "write_experiment_figures", lambda r, d: calls.append(d) or [])
    _main(experiment, **settings)
    with open(baseline + ".log") as f:
        assert f.read().count("$ ") == 2  # trained again
    with open(mmin + ".log") as f:
        assert f.read() == mmin_log  # not started again
    assert os.path.getmtime(os.path.join(mmin, "metrics.json")) == mmin_metrics_time
    assert os.path.exists(os.path.join(baseline, "metrics.json"))
    assert list(_read(os.path.join(output_dir, "results.json"))["models"]) == ["baseline", "mmin"]
    assert calls == [output_dir]


def test_experiment_flags_must_not_change(experiment, tmp_path):
    if not FLAGS.is_parsed():
        FLAGS.mark_as_parsed()
    with flagsaver.flagsaver(**tiny_runs.TINY_FLAGS):
        experiment.write_experiment_flags(str(tmp_path))
        experiment.write_experiment_flags(str(tmp_path))  # same flags: fine
    with flagsaver.flagsaver(**{**tiny_runs.TINY_FLAGS, "epochs": 3}):
        with pytest.raises(RunError, match=r"other training flags \(differences: \['--epochs=1', '--epochs=3'\]\)"):
            experiment.write_experiment_flags(str(tmp_path))


def test_experiment_flags_added_at_their_defaults_are_no_difference(experiment, tmp_path):
    if not FLAGS.is_parsed():
        FLAGS.mark_as_parsed()
    path = os.path.join(str(tmp_path), "experiment.flags")
    with flagsaver.flagsaver(**tiny_runs.TINY_FLAGS):
        experiment.write_experiment_flags(str(tmp_path))
        with open(path) as f:
            complete = f.read()
        older = "".join(line + "\n" for line in complete.splitlines() if not line.startswith("--mctn_"))
        with open(path, "w") as f:
            f.write(older)  # an experiment started before the --mctn_* flags existed
        experiment.write_experiment_flags(str(tmp_path))
        with open(path) as f:
            assert f.read() == complete
        with open(path, "w") as f:
            f.write(older)
    with flagsaver.flagsaver(**{**tiny_runs.TINY_FLAGS, "mctn_steps": 7}):
        with pytest.raises(RunError, match=r"differences: \['--mctn_steps=7'\]"):
            experiment.write_experiment_flags(str(tmp_path))


def test_a_shard_without_runs_trains_and_aggregates_nothing(experiment, data_dir, tmp_path):
    _main(experiment, data_dir=data_dir, output_dir=str(tmp_path), models=["baseline"], folds=["1"], seeds=1,
          num_shards=2, shard_index=1)
    assert sorted(os.listdir(tmp_path)) == ["experiment.flags"]
    with pytest.raises(RunError, match="No complete run"):
        _main(experiment, data_dir=data_dir, output_dir=str(tmp_path), models=["baseline"], folds=["1"], seeds=1,
              aggregate_only=True)


@pytest.mark.parametrize(
    "flag_values, message",
    [(dict(pretrained_dir="x"), "set per run"), (dict(output_dir=None), "--data_dir and --output_dir are required")],
)
def test_bad_flags(experiment, data_dir, tmp_path, flag_values, message):
    with pytest.raises(app.UsageError, match=message):
        _main(experiment, **{"data_dir": data_dir, "output_dir": str(tmp_path), **flag_values})


def test_a_shard_index_beyond_the_shards_is_refused(experiment, data_dir, tmp_path):
    with pytest.raises(ValueError, match="0 <= shard_index < num_shards. Received: num_shards=2, shard_index=2"):
        _main(experiment, data_dir=data_dir, output_dir=str(tmp_path), num_shards=2, shard_index=2)


@pytest.mark.parametrize("environ, flags, expected", [
    ({}, (None, None), (1, 0)),
    ({"SLURM_ARRAY_TASK_ID": "12", "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_COUNT": "4"}, (None, None), (4, 2)),
    ({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"}, (None, None), (4, 3)),
    ({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"}, (8, 5), (8, 5)),  # the flags win
    ({"JOB_COMPLETION_INDEX": "2"}, (5, None), (5, 2)),
])
def test_shards_default_from_the_scheduler(environ, flags, expected):
    assert experiment_plan.resolve_shard(*flags, environ) == expected


@pytest.mark.parametrize("environ, flags, match", [
    ({"JOB_COMPLETION_INDEX": "2"}, (None, None), "give --num_shards, the Job's completions"),
    ({"SLURM_ARRAY_TASK_ID": "x"}, (None, None), "SLURM_ARRAY_TASK_ID='x' is not an integer"),
    ({"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "4"}, (None, None), "0 <= shard_index < num_shards"),
])
def test_bad_scheduler_environments(environ, flags, match):
    with pytest.raises(ValueError, match=match):
        experiment_plan.resolve_shard(*flags, environ)


def test_mctn_expands_to_one_model_per_missing_condition():
    keys = experiment_plan.model_keys(["mmin", "mctn"], tiny_runs.MODALITIES)
    assert keys == ("mmin", "mctn_a", "mctn_v", "mctn_t", "mctn_av", "mctn_at", "mctn_vt")
    assert experiment_plan.model_keys(["mctn_ta"], tiny_runs.MODALITIES) == ("mctn_at",)
    with pytest.raises(ValueError, match="no MCTN of the full condition"):
        experiment_plan.model_keys(["mctn_avt"], tiny_runs.MODALITIES)
    runs = experiment_plan.plan_runs(["mctn_a", "mctn_at"], ["1"], [0], "out")
    assert [(r.model, r.condition, r.pretrained_dir) for r in runs] == [
        (ModelKind.MCTN, "a", None), (ModelKind.MCTN, "at", None)]  # no teacher, no baseline added
    assert runs[1].output_dir == os.path.join("out", "runs", "mctn_at", "fold1", "seed0")
    assert runs[1].train_arguments()[0] == "--model=mctn" and "--condition=at" in runs[1].train_arguments()


def test_the_strategy_reaches_every_run(experiment, tmp_path):
    """`--strategy` (and its settings) are training flags: experiment.flags passes them to every run."""
    if not FLAGS.is_parsed():
        FLAGS.mark_as_parsed()
    with flagsaver.flagsaver(**tiny_runs.TINY_FLAGS, strategy=distribution.StrategyKind.MIRRORED, logical_cpus=2):
        experiment.write_experiment_flags(str(tmp_path))
    with open(os.path.join(str(tmp_path), "experiment.flags")) as f:
        shared = f.read().splitlines()
    assert "--strategy=mirrored" in shared and "--logical_cpus=2" in shared
