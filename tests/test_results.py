"""Metrics on hand-computed examples, and the result tables from hand-made metrics.json files."""

import csv
import io
import json
import os
import zlib

import numpy as np
import pytest
from scipy import stats as scipy_stats

from mmin_tf import experiment_plan, results
from mmin_tf import metrics as metrics_lib
from mmin_tf.training import RunError

MISSING = ("a", "v", "t", "av", "at", "vt")
CONDITIONS = MISSING + ("avt",)
FOLDS = ("1", "2")
SEEDS = (0, 1)
# Model levels: MMIN clearly above the augmented baseline, which is above the full-modality one.
LEVELS = {"baseline": 0.50, "augmented": 0.55, "mmin": 0.60, "mmin_ae": 0.57, "mmin_nocycle": 0.58}


def test_metrics_match_hand_computed_values():
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 3])
    predictions = np.array([0, 0, 0, 1, 1, 0, 2, 2])
    values = metrics_lib.classification_metrics(labels, predictions, 4)
    assert values["wa"] == pytest.approx(5 / 8)
    # Recall per class: 3/4, 1/2, 1/1, 0/1.
    assert values["ua"] == pytest.approx((0.75 + 0.5 + 1.0 + 0.0) / 4)
    # F1 per class: P=R=3/4; P=R=1/2; P=1/2, R=1; P=0 (none predicted), R=0.
    assert values["f1"] == pytest.approx((0.75 + 0.5 + 2 / 3 + 0.0) / 4)


def test_pooled_average_differs_from_the_mean_of_conditions():
    per_condition = {
        "a": (np.array([0, 0, 0, 1]), np.array([0, 0, 0, 1])),  # WA 1, UA 1
        "v": (np.array([0, 1]), np.array([1, 1])),  # WA 1/2, UA (0 + 1) / 2
        "av": (np.array([1]), np.array([0])),  # full condition here: not in the summaries
    }
    report = metrics_lib.condition_report(per_condition, ["a", "v"], 2)
    assert report["missing_mean"]["wa"] == pytest.approx(0.75)
    assert report["missing_mean"]["ua"] == pytest.approx(0.75)
    # Pooled: labels 0 0 0 1 0 1, predictions 0 0 0 1 1 1: WA 5/6; recall 3/4 and 2/2.
    assert report["missing_pooled"]["wa"] == pytest.approx(5 / 6)
    assert report["missing_pooled"]["ua"] == pytest.approx(0.875)


def _value(model, fold, seed, column):
    """A model's level + a per-run offset (shared by the models: pairing matters) + small noise."""
    run_offset = 0.03 * int(fold) + 0.01 * seed
    noise = 0.004 * (zlib.crc32(f"{model}{fold}{seed}{column}".encode()) % 7) / 7 if model != "baseline" else 0.0
    column_offset = 0.01 * (CONDITIONS + ("pooled",)).index(column)
    return round(LEVELS.get(model, 0.52) + run_offset + column_offset + noise, 6)


def _write_metrics(run):
    metrics = {
        "model": run.model.value, "fold": run.fold, "seed": run.seed, "best_epoch": 1,
        "conditions": {
            c: {m: _value(run.key, run.fold, run.seed, c) + d for m, d in (("wa", 0.0), ("ua", 0.001), ("f1", 0.002))}
            for c in CONDITIONS
        },
        "missing_mean": {"wa": 0.0, "ua": 0.0, "f1": 0.0},  # must not be what Average shows
        "missing_pooled": {m: _value(run.key, run.fold, run.seed, "pooled") + d for m, d in (("wa", 0.0), ("ua", 0.001), ("f1", 0.002))},
    }
    os.makedirs(run.output_dir, exist_ok=True)
    with open(os.path.join(run.output_dir, "metrics.json"), "w") as f:
        json.dump(metrics, f)
    return metrics


def _experiment(tmp_path, keys, skip=()):
    runs = experiment_plan.plan_runs(keys, FOLDS, SEEDS, str(tmp_path))
    written = {}
    for run in runs:
        if (run.key, run.fold, run.seed) not in skip:
            written[run.key, run.fold, run.seed] = _write_metrics(run)
    return runs, written


def test_aggregate_summarizes_every_column_and_pairs_the_t_tests(tmp_path):
    runs, written = _experiment(tmp_path, ["baseline", "augmented", "mmin"], skip={("mmin", "2", 1)})
    aggregated = results.aggregate(runs, str(tmp_path), "tiny", ["wa", "ua"])
    assert aggregated["dataset"] == "tiny"
    assert aggregated["metrics"] == ["wa", "ua"]
    assert aggregated["columns"] == ["a", "v", "t", "av", "at", "vt", "average", "avt"]
    assert list(aggregated["models"]) == ["baseline", "augmented", "mmin"]
    mmin = aggregated["models"]["mmin"]
    assert [(r["fold"], r["seed"]) for r in mmin["runs"]] == [("1", 0), ("1", 1), ("2", 0)]
    assert mmin["runs"][0]["run_dir"] == str(tmp_path / "runs" / "mmin" / "fold1" / "seed0")
    pooled = [written["mmin", f, s]["missing_pooled"]["ua"] for f, s in [("1", 0), ("1", 1), ("2", 0)]]
    assert mmin["columns"]["average"]["ua"]["values"] == pytest.approx(pooled)
    assert mmin["columns"]["average"]["ua"]["mean"] == pytest.approx(np.mean(pooled))
    assert mmin["columns"]["average"]["ua"]["std"] == pytest.approx(np.std(pooled, ddof=1))
    at = [written["mmin", f, s]["conditions"]["at"]["wa"] for f, s in [("1", 0), ("1", 1), ("2", 0)]]
    assert mmin["columns"]["at"]["wa"]["mean"] == pytest.approx(np.mean(at))
    assert aggregated["missing_runs"] == [
        {"model": "mmin", "fold": "2", "seed": 1, "run_dir": str(tmp_path / "runs" / "mmin" / "fold2" / "seed1")}
    ]
    # MMIN has 3 runs, the augmented baseline 4: the test pairs the 3 common (fold, seed).
    keys = [("1", 0), ("1", 1), ("2", 0)]
    expected = scipy_stats.ttest_rel(
        [written["mmin", f, s]["conditions"]["avt"]["ua"] for f, s in keys],
        [written["augmented", f, s]["conditions"]["avt"]["ua"] for f, s in keys],
    )
    significance = aggregated["significance"]
    assert set(significance["mmin"]) == {"average", "avt"}
    assert significance["mmin"]["avt"]["ua"]["vs_augmented"] == pytest.approx(expected.pvalue)
    assert significance["mmin"]["average"]["wa"]["vs_baseline"] < 0.05
    assert significance["baseline"]["average"]["wa"]["vs_baseline"] is None
    assert significance["augmented"]["avt"]["ua"]["vs_augmented"] is None
    assert aggregated["table6"] is None and aggregated["table7"] is None


def test_markdown_has_the_paper_layout_and_marks(tmp_path):
    runs, _ = _experiment(tmp_path, ["baseline", "augmented", "mmin"])
    aggregated = results.aggregate(runs, str(tmp_path), "tiny", ["wa", "ua"])
    text = results.to_markdown(aggregated)
    lines = text.splitlines()
    header = "| Model | Metric | {a} | {v} | {t} | {a,v} | {a,t} | {v,t} | Average | {a,v,t} |"
    start = lines.index(header)
    rows = [line.split(" | ")[:2] for line in lines[start + 2:start + 8]]
    assert rows == [["| Full-modality baseline", "WA"], ["| Full-modality baseline", "UA"],
                    ["| Augmented baseline", "WA"], ["| Augmented baseline", "UA"],
                    ["| MMIN", "WA"], ["| MMIN", "UA"]]
    mmin_wa = lines[start + 6].strip("| ").split(" | ")
    summary = aggregated["models"]["mmin"]["columns"]["average"]["wa"]
    assert mmin_wa[8] == f"{summary['mean']:.4f} ± {summary['std']:.4f} *▲"
    assert mmin_wa[2].endswith(f"{aggregated['models']['mmin']['columns']['a']['wa']['std']:.4f}")  # no marks
    augmented_wa = lines[start + 4].strip("| ").split(" | ")
    assert augmented_wa[8].endswith(" *")
    baseline_wa = lines[start + 2].strip("| ").split(" | ")
    assert "*" not in baseline_wa[8] and "▲" not in baseline_wa[8]
    assert "pooled" in text and "Table 6" not in text and "Table 7" not in text


def test_a_significantly_worse_model_gets_no_mark(tmp_path, monkeypatch):
    monkeypatch.setitem(LEVELS, "augmented", 0.40)
    runs, _ = _experiment(tmp_path, ["baseline", "augmented"])
    aggregated = results.aggregate(runs, str(tmp_path), "tiny", ["ua"])
    assert aggregated["significance"]["augmented"]["average"]["ua"]["vs_baseline"] < 0.05
    assert results.marks(aggregated, "augmented", "average", "ua") == ""


def test_tables_6_and_7_and_msp_metrics(tmp_path):
    keys = experiment_plan.model_keys(
        ["augmented", "mmin", "mmin_ae", "mmin_nocycle", "matched"], tuple(_modalities())
    )
    runs, _ = _experiment(tmp_path, keys)
    aggregated = results.aggregate(runs, str(tmp_path), "msp", ["f1"])
    assert aggregated["table6"] == {"models": ["mmin_ae", "mmin_nocycle", "mmin"]}
    table7 = aggregated["table7"]
    assert table7["metric"] == "f1"
    assert [row["condition"] for row in table7["rows"]] == list(CONDITIONS)
    row = table7["rows"][3]
    assert row["matched"] == aggregated["models"]["matched_av"]["columns"]["av"]["f1"]
    assert row["mmin"] == aggregated["models"]["mmin"]["columns"]["av"]["f1"]
    text = results.to_markdown(aggregated)
    assert "| MMIN-AE | F1 |" in text and "| MMIN-NoCycle | F1 |" in text
    assert "| Train | Test | Baseline | Augmented | MMIN |" in text
    assert "| {a,v} | {a,v} | " in text
    assert "| Full-modality baseline | F1 |" in text  # added as MMIN's teacher


def test_csv_and_files(tmp_path):
    runs, _ = _experiment(tmp_path, ["baseline", "augmented", "mmin"])
    aggregated = results.aggregate(runs, str(tmp_path), "tiny", ["wa", "ua"])
    rows = list(csv.DictReader(io.StringIO(results.to_csv(aggregated))))
    assert len(rows) == 3 * 2 * 8
    average = next(r for r in rows if (r["model"], r["metric"], r["column"]) == ("mmin", "ua", "average"))
    assert float(average["mean"]) == aggregated["models"]["mmin"]["columns"]["average"]["ua"]["mean"]
    assert average["n"] == "4"
    assert float(average["p_vs_augmented"]) == aggregated["significance"]["mmin"]["average"]["ua"]["vs_augmented"]
    assert next(r for r in rows if (r["model"], r["column"]) == ("mmin", "a"))["p_vs_baseline"] == ""
    paths = results.write_results(aggregated, str(tmp_path))
    assert [os.path.basename(p) for p in paths] == ["results.md", "results.csv", "results.json"]
    with open(tmp_path / "results.json") as f:
        assert json.load(f) == aggregated
    assert not [name for name in os.listdir(tmp_path) if "incomplete" in name]


def test_aggregate_errors(tmp_path):
    runs = experiment_plan.plan_runs(["baseline"], FOLDS, SEEDS, str(tmp_path))
    with pytest.raises(RunError, match="No complete run"):
        results.aggregate(runs, str(tmp_path), "tiny", ["ua"])
    for run in runs:
        _write_metrics(run)
    with open(os.path.join(runs[1].output_dir, "metrics.json")) as f:
        metrics = json.load(f)
    del metrics["conditions"]["vt"]
    with open(os.path.join(runs[1].output_dir, "metrics.json"), "w") as f:
        json.dump(metrics, f)
    with pytest.raises(RunError, match="tested under conditions"):
        results.aggregate(runs, str(tmp_path), "tiny", ["ua"])
    with pytest.raises(ValueError, match="`metrics` must be distinct names"):
        results.parse_metrics(["ua", "accuracy"])


def test_default_metrics_follow_the_selection_metric():
    assert results.default_metrics("ua") == ("wa", "ua")
    assert results.default_metrics("f1") == ("f1",)


def _modalities():
    from tests import tiny_runs

    return tiny_runs.MODALITIES


def test_missing_rate_columns_are_summarized_tested_and_tabled(tmp_path):
    runs, written = _experiment(tmp_path, ["baseline", "augmented", "mmin"])
    for run in runs:
        metrics = written[run.key, run.fold, run.seed]
        metrics["missing_rates"] = {
            rate: {"wa": LEVELS[run.key] - float(rate) / 2 + 0.01 * int(run.fold) + 0.001 * run.seed,
                   "ua": LEVELS[run.key] - float(rate) / 2, "f1": 0.5, "conditions": {"a": 1}}
            for rate in ("0.1", "0.5")}
        with open(os.path.join(run.output_dir, "metrics.json"), "w") as f:
            json.dump(metrics, f)
    aggregated = results.aggregate(runs, str(tmp_path), "tiny", ["wa", "ua"])
    assert aggregated["rate_columns"] == ["rate_0.1", "rate_0.5"]
    mmin = aggregated["models"]["mmin"]["columns"]["rate_0.5"]["wa"]
    assert mmin["mean"] == pytest.approx(np.mean([written["mmin", f, s]["missing_rates"]["0.5"]["wa"]
                                                  for f in FOLDS for s in SEEDS]))
    assert set(aggregated["significance"]["mmin"]) == {"average", "avt", "rate_0.1", "rate_0.5"}
    assert aggregated["significance"]["mmin"]["rate_0.1"]["wa"]["vs_baseline"] < 0.05
    text = results.to_markdown(aggregated)
    assert "## Missing-rate protocol" in text and "| Model | Metric | rate 0.1 | rate 0.5 |" in text
    assert "mmin,wa,rate_0.5," in results.to_csv(aggregated)
    # Runs tested at other rates do not mix.
    del written["mmin", "1", 0]["missing_rates"]["0.5"]
    with open(os.path.join(runs[[r.key for r in runs].index("mmin")].output_dir, "metrics.json"), "w") as f:
        json.dump(written["mmin", "1", 0], f)
    with pytest.raises(RunError, match="missing rates"):
        results.aggregate(runs, str(tmp_path), "tiny", ["wa", "ua"])


# MCTN: one run per missing condition, assembled into one Table 5 row. ----------------------------

def _write_mctn_run(run, rng):
    """A hand-made MCTN run tested under its condition only: its confusion matrix and metrics."""
    labels = rng.integers(0, 4, size=12)
    predictions = np.where(rng.random(12) < 0.6, labels, rng.integers(0, 4, size=12))
    matrix = metrics_lib.confusion_matrix(labels, predictions, 4)
    os.makedirs(run.output_dir, exist_ok=True)
    scores = metrics_lib.classification_metrics(labels, predictions, 4)
    metrics = {"model": "mctn", "fold": run.fold, "seed": run.seed, "best_epoch": 1,
               "conditions": {run.condition: scores}, "missing_mean": scores, "missing_pooled": scores}
    with open(os.path.join(run.output_dir, "metrics.json"), "w") as f:
        json.dump(metrics, f)
    with open(os.path.join(run.output_dir, "confusion_matrices.json"), "w") as f:
        json.dump({"label_names": ["a", "b", "c", "d"], "conditions": {run.condition: matrix.tolist()}}, f)
    return labels, predictions, scores


def test_the_mctn_row_is_assembled_from_its_per_condition_runs(tmp_path):
    keys = ["baseline", "augmented", "mmin"] + [f"mctn_{c}" for c in MISSING]
    runs = experiment_plan.plan_runs(keys, FOLDS, SEEDS, str(tmp_path))
    rng = np.random.default_rng(0)
    written = {}
    for run in runs:
        if run.key.startswith("mctn_"):
            if (run.key, run.fold, run.seed) != ("mctn_vt", "2", 1):  # that fold and seed is incomplete
                written[run.condition, run.fold, run.seed] = _write_mctn_run(run, rng)
        else:
            _write_metrics(run)
    aggregated = results.aggregate(runs, str(tmp_path), "tiny", ["wa", "ua"])

    assert list(aggregated["models"]) == ["baseline", "augmented", "mmin", "mctn"]
    mctn = aggregated["models"]["mctn"]
    complete = [("1", 0), ("1", 1), ("2", 0)]
    assert [(r["fold"], r["seed"]) for r in mctn["runs"]] == complete
    assert mctn["runs"][0]["run_dirs"]["at"] == str(tmp_path / "runs" / "mctn_at" / "fold1" / "seed0")
    assert list(mctn["columns"]) == list(MISSING) + ["average"]  # no {a,v,t}
    assert mctn["columns"]["av"]["ua"]["values"] == pytest.approx([written["av", f, s][2]["ua"] for f, s in complete])
    # Average: the metric over the six runs' test predictions pooled.
    pooled = []
    for fold, seed in complete:
        labels = np.concatenate([written[c, fold, seed][0] for c in MISSING])
        predictions = np.concatenate([written[c, fold, seed][1] for c in MISSING])
        pooled.append(metrics_lib.classification_metrics(labels, predictions, 4))
    for metric in ("wa", "ua"):
        assert mctn["columns"]["average"][metric]["values"] == pytest.approx([p[metric] for p in pooled])
    assert {run["model"] for run in aggregated["missing_runs"]} == {"mctn_vt"}
    # Paired t-tests on Average against the baselines, over the (fold, seed) both have.
    expected = scipy_stats.ttest_rel(
        [p["ua"] for p in pooled],
        [_value("augmented", f, s, "pooled") + 0.001 for f, s in complete])
    assert set(aggregated["significance"]["mctn"]) == {"average"}
    assert aggregated["significance"]["mctn"]["average"]["ua"]["vs_augmented"] == pytest.approx(expected.pvalue)

    text = results.to_markdown(aggregated)
    line = next(line for line in text.splitlines() if line.startswith("| MCTN | UA |"))
    cells = line.strip("| ").split(" | ")
    assert cells[-1] == "-" and cells[-2].startswith(f"{mctn['columns']['average']['ua']['mean']:.4f}")
    assert "MCTN: one model per missing condition" in text
    rows = list(csv.DictReader(io.StringIO(results.to_csv(aggregated))))
    mctn_rows = [r for r in rows if r["model"] == "mctn"]
    assert len(mctn_rows) == 2 * 7 and "avt" not in {r["column"] for r in mctn_rows}
    average = next(r for r in mctn_rows if (r["metric"], r["column"]) == ("ua", "average"))
    assert average["n"] == "3" and float(average["p_vs_augmented"]) == pytest.approx(expected.pvalue)
    results.write_results(aggregated, str(tmp_path))
    with open(tmp_path / "results.json") as f:
        assert json.load(f)["models"]["mctn"] == mctn


def test_an_experiment_of_mctn_runs_only_and_its_errors(tmp_path):
    runs = experiment_plan.plan_runs([f"mctn_{c}" for c in MISSING], ["1"], [0], str(tmp_path))
    rng = np.random.default_rng(1)
    for run in runs:
        _write_mctn_run(run, rng)
    aggregated = results.aggregate(runs, str(tmp_path), "tiny", ["f1"])
    assert aggregated["columns"] == list(MISSING) + ["average", "avt"]
    assert aggregated["models"]["mctn"]["columns"]["a"]["f1"]["std"] is None
    path = os.path.join(runs[0].output_dir, "confusion_matrices.json")
    with open(path) as f:
        matrices = json.load(f)
    with open(path, "w") as f:
        json.dump({**matrices, "conditions": {"v": matrices["conditions"]["a"]}}, f)
    with pytest.raises(RunError, match="has no confusion matrix of its condition 'a'"):
        results.aggregate(runs, str(tmp_path), "tiny", ["f1"])
    os.remove(path)
    with pytest.raises(RunError, match="has no confusion_matrices.json: its Average cannot be pooled"):
        results.aggregate(runs, str(tmp_path), "tiny", ["f1"])
    # MCTN runs of conditions the other runs were not tested under do not fit.
    baseline = experiment_plan.plan_runs(["baseline"], ["1"], [0], str(tmp_path))
    other = dict(_write_metrics(baseline[0]))
    other["conditions"] = {c: other["conditions"][c] for c in ("a", "v", "t", "avt")}
    with open(os.path.join(baseline[0].output_dir, "metrics.json"), "w") as f:
        json.dump(other, f)
    with pytest.raises(RunError, match=r"MCTN runs of conditions \['at', 'av', 'vt'\] do not fit"):
        results.aggregate(baseline + runs[1:], str(tmp_path), "tiny", ["f1"])


def test_metrics_from_a_confusion_matrix_are_the_metrics_of_its_predictions():
    rng = np.random.default_rng(2)
    for _ in range(50):
        size = int(rng.integers(1, 30))
        labels, predictions = rng.integers(0, int(rng.integers(1, 5)), size), rng.integers(0, 4, size)
        expected = metrics_lib.classification_metrics(labels, predictions, 5)
        assert metrics_lib.metrics_from_confusion(metrics_lib.confusion_matrix(labels, predictions, 5)) == (
            pytest.approx(expected))
    for bad in (np.zeros((3, 3)), np.ones((2, 3)), -np.eye(2)):
        with pytest.raises(ValueError, match="Expected a square, non-empty matrix of counts"):
            metrics_lib.metrics_from_confusion(bad)
