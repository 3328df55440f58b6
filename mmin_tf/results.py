"""An experiment's tables: Table 5, 6 and 7 of the paper from the runs' metrics.json files.

`aggregate` reads every complete run of a plan (experiment_plan.py) and returns the content of
`results.json`:

    {"dataset": name,
     "metrics": ["wa", "ua"] (IEMOCAP) or ["f1"] (MSP-IMPROV),
     "columns": ["a", "v", "t", "av", "at", "vt", "average", "avt"],
     "rate_columns": ["rate_0.1", ...] (runs tested with --missing_rates; else []),
     "models": {model_key: {"runs": [{"fold", "seed", "run_dir"}],
                            "columns": {column: {metric: {"mean", "std", "values"}}}},
                "mctn": {"runs": [{"fold", "seed", "run_dirs": {condition: run_dir}}],
                         "columns": {missing condition or "average": ...}}},
     "significance": {model_key: {"average" | "avt": {metric: {"vs_baseline": p | null,
                                                                  "vs_augmented": p | null}}}},
     "table6": {"models": [...]} | null,
     "table7": {"metric", "rows": [{"condition", "matched", "augmented", "mmin"}]} | null,
     "missing_runs": [{"model", "fold", "seed", "run_dir"}]}

`average` is each run's `missing_pooled` metric: the metric over the missing-condition test sets
pooled, the original code's "total" and the paper's "Average".

MCTN is one model per missing condition (runs `mctn_<condition>`, each tested under its condition
only), so its row is assembled per (fold, seed) from the six runs: each condition's column is the
metric of that condition's run, and `average` the metric over the six runs' test predictions
pooled, computed exactly from the sum of their `confusion_matrices.json` matrices
(`metrics.metrics_from_confusion`). It has no full-condition column (absent from its `columns`;
"-" in results.md, no row in results.csv) and no missing-rate columns; a (fold, seed) lacking one
of the six runs is left out of the row. `rate_<r>` is the metric under the
missing-rate protocol at rate r (`metrics.json["missing_rates"]`); they are tested like Average. `values` follow the order of
`runs`; `run_dir` is an absolute path; std is the sample standard deviation
(ddof 1, null for one run). p-values come from paired t-tests over runs paired by (fold, seed)
(statistics.py).
"""

from __future__ import annotations

import csv
import io
import json
import os
from typing import Optional, Sequence

from absl import logging

import numpy as np

from mmin_tf import atomic_files, statistics
from mmin_tf.configs import ModelKind
from mmin_tf.data.format import fold_sort_key
from mmin_tf.metrics import metrics_from_confusion
from mmin_tf.modalities import condition_label
from mmin_tf.experiment_plan import MATCHED_PREFIX, Run
from mmin_tf.run_dir import CONFUSION_MATRICES, METRICS, RunError

AVERAGE = "average"
SUMMARY = "missing_pooled"  # the metrics.json entry shown as "Average"
METRIC_NAMES = {"wa": "WA", "ua": "UA", "f1": "F1"}
SIGNIFICANCE_LEVEL = 0.05
REFERENCES = {"vs_baseline": (ModelKind.BASELINE.value, "*"), "vs_augmented": (ModelKind.AUGMENTED.value, "▲")}
MCTN = ModelKind.MCTN.value  # the row assembled from the per-condition MCTN runs
TABLE5_MODELS = (ModelKind.BASELINE.value, ModelKind.AUGMENTED.value, ModelKind.MMIN.value, MCTN)
TABLE6_MODELS = (ModelKind.MMIN_AE.value, ModelKind.MMIN_NOCYCLE.value, ModelKind.MMIN.value)
DISPLAY_NAMES = {
    ModelKind.BASELINE.value: "Full-modality baseline",
    ModelKind.AUGMENTED.value: "Augmented baseline",
    ModelKind.MMIN.value: "MMIN",
    ModelKind.MMIN_AE.value: "MMIN-AE",
    ModelKind.MMIN_NOCYCLE.value: "MMIN-NoCycle",
    MCTN: "MCTN",
}
RESULTS_FILES = ("results.md", "results.csv", "results.json")


def default_metrics(selection_metric: str) -> tuple[str, ...]:
    """The paper's metrics by the validation metric: F1 (MSP-IMPROV) or WA and UA (IEMOCAP)."""
    return ("f1",) if selection_metric == "f1" else ("wa", "ua")


def parse_metrics(entries: Sequence[str]) -> tuple[str, ...]:
    metrics = tuple(entry.strip().lower() for entry in entries)
    unknown = [metric for metric in metrics if metric not in METRIC_NAMES]
    if not metrics or unknown or len(set(metrics)) != len(metrics):
        raise ValueError(f"`metrics` must be distinct names from {list(METRIC_NAMES)}. Received: {list(entries)}")
    return metrics


def model_label(key: str) -> str:
    if key.startswith(MATCHED_PREFIX):
        return f"Matched baseline {condition_label(key[len(MATCHED_PREFIX):])}"
    return DISPLAY_NAMES[key]


def _load(run: Run) -> dict:
    with open(os.path.join(run.output_dir, METRICS)) as f:
        return json.load(f)


def _columns(conditions: Sequence[str]) -> list[str]:
    """Missing conditions, Average, then the full condition (the one with every letter)."""
    full = max(conditions, key=len)
    return [name for name in conditions if name != full] + [AVERAGE, full]


RATE_PREFIX = "rate_"


def _value(metrics: dict, column: str, metric: str) -> float:
    if column.startswith(RATE_PREFIX):
        return metrics["missing_rates"][column[len(RATE_PREFIX):]][metric]
    return metrics[SUMMARY][metric] if column == AVERAGE else metrics["conditions"][column][metric]


def _rate_columns(metrics: dict) -> list[str]:
    return [f"{RATE_PREFIX}{rate}" for rate in metrics.get("missing_rates", {})]


def aggregate(runs: Sequence[Run], output_dir: str, dataset: str, metrics: Sequence[str]) -> dict:
    """Summaries and significance tests of the complete `runs` (see the module docstring).

    Runs without metrics.json are listed in `missing_runs` and left out.

    Raises:
        RunError: no run is complete, or runs were evaluated under different conditions.
    """
    metrics = parse_metrics(metrics)
    # Each run's completeness is looked at once: one that finishes meanwhile is in exactly one list.
    finished = [run.is_complete for run in runs]
    complete = [(run, _load(run)) for run, done in zip(runs, finished) if done]
    incomplete = [run for run, done in zip(runs, finished) if not done]
    if not complete:
        raise RunError(f"No complete run in {output_dir!r} to aggregate ({len(runs)} planned)")
    per_condition = [(run, values) for run, values in complete if run.model is ModelKind.MCTN]
    complete = [(run, values) for run, values in complete if run.model is not ModelKind.MCTN]
    conditions = list(complete[0][1]["conditions"]) if complete else _mctn_conditions(per_condition)
    rate_columns = _rate_columns(complete[0][1]) if complete else []
    for run, values in complete:
        if list(values["conditions"]) != conditions or _rate_columns(values) != rate_columns:
            raise RunError(
                f"{run.output_dir!r} was tested under conditions {list(values['conditions'])} and missing rates "
                f"{_rate_columns(values)}, other runs under {conditions} and {rate_columns}"
            )
    if incomplete:
        logging.warning("%d of %d runs are incomplete and left out: %s",
                        len(incomplete), len(runs), [run.output_dir for run in incomplete])
    columns = _columns(conditions)
    tested = columns + rate_columns
    by_model: dict[str, list] = {}
    for run, values in complete:
        by_model.setdefault(run.key, []).append((run, values))
    models, paired = {}, {}
    for key, entries in by_model.items():
        models[key] = {
            "runs": [
                {"fold": run.fold, "seed": run.seed, "run_dir": os.path.abspath(run.output_dir)}
                for run, _ in entries
            ],
            "columns": {
                column: {metric: statistics.summarize([_value(v, column, metric) for _, v in entries]) for metric in metrics}
                for column in tested
            },
        }
        paired[key] = {
            (column, metric): {(run.fold, run.seed): _value(v, column, metric) for run, v in entries}
            for column in tested for metric in metrics
        }
    if per_condition:
        row = _mctn_row(per_condition, columns, metrics)
        if row is not None:
            models[MCTN], paired[MCTN] = row
    significance = {
        key: {
            column: {
                metric: {
                    name: _p_value(paired, key, reference, column, metric)
                    for name, (reference, _) in REFERENCES.items()
                }
                for metric in metrics
            }
            for column in (AVERAGE, columns[-1], *rate_columns) if column in models[key]["columns"]
        }
        for key in models
    }
    return {
        "dataset": dataset,
        "metrics": list(metrics),
        "columns": columns,
        "rate_columns": rate_columns,
        "models": models,
        "significance": significance,
        "table6": _table6(models),
        "table7": _table7(models, columns, metrics),
        "missing_runs": [
            {"model": run.key, "fold": run.fold, "seed": run.seed, "run_dir": os.path.abspath(run.output_dir)}
            for run in incomplete
        ],
    }


def _mctn_conditions(per_condition) -> list[str]:
    """The evaluation conditions of an experiment that has only MCTN runs: theirs (in plan order,
    by size then configured order), then the full one (the one-letter conditions joined)."""
    conditions = list(dict.fromkeys(run.condition for run, _ in per_condition))
    return conditions + ["".join(name for name in conditions if len(name) == 1)]


def _mctn_row(per_condition, columns, metrics):
    """Table 5's MCTN row from the per-condition runs: `(model entry, paired values)`, or None
    when no (fold, seed) has all its missing conditions' runs (see the module docstring)."""
    missing = columns[:-2]
    unknown = sorted({run.condition for run, _ in per_condition} - set(missing))
    if unknown:
        raise RunError(f"MCTN runs of conditions {unknown} do not fit the experiment's missing conditions {missing}")
    groups: dict[tuple, dict] = {}
    for run, values in per_condition:
        groups.setdefault((run.fold, run.seed), {})[run.condition] = (run, values)
    entries, tested = [], missing + [AVERAGE]
    for (fold, seed), by_condition in groups.items():
        absent = [name for name in missing if name not in by_condition]
        if absent:
            logging.warning("MCTN fold %s seed %s lacks the runs of conditions %s: left out of the MCTN row",
                            fold, seed, absent)
            continue
        pooled = sum(np.asarray(_confusion(run, name), np.int64) for name, (run, _) in by_condition.items())
        scores = {name: values["conditions"][name] for name, (_, values) in by_condition.items()}
        scores[AVERAGE] = metrics_from_confusion(pooled)
        run_dirs = {name: os.path.abspath(by_condition[name][0].output_dir) for name in missing}
        entries.append(({"fold": fold, "seed": seed, "run_dirs": run_dirs}, scores))
    if not entries:
        return None
    model = {
        "runs": [run for run, _ in entries],
        "columns": {
            column: {
                metric: statistics.summarize([scores[column][metric] for _, scores in entries]) for metric in metrics
            }
            for column in tested
        },
    }
    paired = {
        (column, metric): {(run["fold"], run["seed"]): scores[column][metric] for run, scores in entries}
        for column in tested for metric in metrics
    }
    return model, paired


def _confusion(run: Run, condition: str) -> list:
    path = os.path.join(run.output_dir, CONFUSION_MATRICES)
    if not os.path.exists(path):
        raise RunError(f"The MCTN run {run.output_dir!r} has no {CONFUSION_MATRICES}: its Average cannot be pooled")
    with open(path) as f:
        matrices = json.load(f)["conditions"]
    if condition not in matrices:
        raise RunError(f"{path!r} has no confusion matrix of its condition {condition!r}")
    return matrices[condition]


def _p_value(paired, key, reference, column, metric) -> Optional[float]:
    if key == reference or reference not in paired:
        return None
    return statistics.paired_t_test(paired[key][column, metric], paired[reference][column, metric]).p_value


def _table6(models) -> Optional[dict]:
    if not any(key in models for key in TABLE6_MODELS[:2]):
        return None
    return {"models": [key for key in TABLE6_MODELS if key in models]}


def _table7(models, columns, metrics) -> Optional[dict]:
    matched = [column for column in columns if f"{MATCHED_PREFIX}{column}" in models]
    if not matched or ModelKind.AUGMENTED.value not in models or ModelKind.MMIN.value not in models:
        return None
    metric = "ua" if "ua" in metrics else metrics[0]
    rows = []
    for condition in matched:
        rows.append({
            "condition": condition,
            "matched": models[f"{MATCHED_PREFIX}{condition}"]["columns"][condition][metric],
            "augmented": models[ModelKind.AUGMENTED.value]["columns"][condition][metric],
            "mmin": models[ModelKind.MMIN.value]["columns"][condition][metric],
        })
    return {"metric": metric, "rows": rows}


def marks(results: dict, key: str, column: str, metric: str) -> str:
    """`*` / `▲`: p < 0.05 and a higher mean than the full-modality / augmented baseline."""
    tests = results["significance"].get(key, {}).get(column)
    if tests is None:
        return ""
    text = ""
    mean = results["models"][key]["columns"][column][metric]["mean"]
    for name, (reference, symbol) in REFERENCES.items():
        p_value = tests[metric][name]
        if p_value is not None and p_value < SIGNIFICANCE_LEVEL:
            if mean > results["models"][reference]["columns"][column][metric]["mean"]:
                text += symbol
    return text


def _cell(summary: dict, mark: str = "") -> str:
    text = f"{summary['mean']:.4f}"
    if summary["std"] is not None:
        text += f" ± {summary['std']:.4f}"
    return f"{text} {mark}" if mark else text


def _column_label(column: str) -> str:
    return f"rate {column[len(RATE_PREFIX):]}" if column.startswith(RATE_PREFIX) else condition_label(column)


def _condition_table(results: dict, keys: Sequence[str], columns: Optional[Sequence[str]] = None) -> list[str]:
    columns = results["columns"] if columns is None else columns
    lines = [
        "| Model | Metric | " + " | ".join(_column_label(c) for c in columns) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in columns) + " |",
    ]
    for key in keys:
        tested = results["models"][key]["columns"]
        for metric in results["metrics"]:
            cells = [
                _cell(tested[column][metric], marks(results, key, column, metric)) if column in tested else "-"
                for column in columns
            ]
            lines.append(f"| {model_label(key)} | {METRIC_NAMES[metric]} | " + " | ".join(cells) + " |")
    return lines


def to_markdown(results: dict) -> str:
    """The tables in the paper's layout, with a note on what the numbers are."""
    models = results["models"]
    full = results["columns"][-1]
    runs = sorted({(run["fold"], run["seed"]) for model in models.values() for run in model["runs"]})
    folds = sorted({fold for fold, _ in runs}, key=fold_sort_key)
    seeds = sorted({seed for _, seed in runs})
    lines = [
        f"# Results on {results['dataset']}",
        "",
        f"Folds: {', '.join(folds)}. Seeds: {', '.join(map(str, seeds))}. Runs per model: "
        + ", ".join(f"{key} {len(model['runs'])}" for key, model in models.items()) + ".",
        "Each cell: mean ± sample standard deviation over folds × seeds (no ± with one run).",
        f"Average = the metric over the {len(results['columns']) - 2} missing-condition test sets "
        f"pooled (`{SUMMARY}` in each run's metrics.json), the original code's \"total\", which is "
        "the paper's Average; not the mean of the columns.",
        f"Paired t-tests (two-sided, `scipy.stats.ttest_rel`) over the runs paired by (fold, seed), "
        f"on Average and {condition_label(full)}: * p < {SIGNIFICANCE_LEVEL} and better than the "
        f"full-modality baseline, ▲ p < {SIGNIFICANCE_LEVEL} and better than the augmented baseline. "
        "p-values are in results.json and results.csv.",
    ]
    if MCTN in models:
        lines.append(
            "MCTN: one model per missing condition (runs `mctn_<condition>`); each column is the test metric of "
            "that condition's model, Average the metric over the six models' test predictions pooled (their "
            "confusion matrices summed); MCTN cannot be tested under the full condition (\"-\").")
    if results.get("missing_runs"):
        missing = [f"{run['model']} fold {run['fold']} seed {run['seed']}" for run in results["missing_runs"]]
        lines.append(f"Incomplete runs, left out: {', '.join(missing)}.")
    table5 = [key for key in TABLE5_MODELS if key in models]
    if table5:
        lines += ["", "## Table 5: missing-modality testing conditions", "", *_condition_table(results, table5)]
    rates = results.get("rate_columns") or []
    if rates:
        lines += ["", "## Missing-rate protocol", "",
                  "Each modality of each test utterance dropped with the rate, at least one kept, by masks that depend "
                  "only on --missing_rate_seed and the utterance (identical for every model and run); the protocol of "
                  "GCNet (Lian et al. 2023) and later work. Marks as in Table 5.", "",
                  *_condition_table(results, [key for key in models if (key in TABLE5_MODELS or key in TABLE6_MODELS)
                                              and key != MCTN] or list(models), rates)]
    if results.get("table6"):
        lines += ["", "## Table 6: ablations of the imagination module", "",
                  *_condition_table(results, results["table6"]["models"])]
    table7 = results.get("table7")
    if table7:
        lines += [
            "",
            f"## Table 7: matched-modality baselines ({METRIC_NAMES[table7['metric']]})",
            "",
            "Baseline: trained and tested on the condition; Augmented and MMIN: the unified models "
            "of Table 5 tested on it.",
            "",
            "| Train | Test | Baseline | Augmented | MMIN |",
            "| --- | --- | ---: | ---: | ---: |",
        ]
        for row in table7["rows"]:
            label = condition_label(row["condition"])
            lines.append(
                f"| {label} | {label} | {_cell(row['matched'])} | {_cell(row['augmented'])} | {_cell(row['mmin'])} |"
            )
    return "\n".join(lines) + "\n"


def to_csv(results: dict) -> str:
    """One row per (model, metric, column): mean, std, n, and the p-values where tested."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", "metric", "column", "mean", "std", "n", "p_vs_baseline", "p_vs_augmented"])
    for key, model in results["models"].items():
        for metric in results["metrics"]:
            for column in results["columns"] + results.get("rate_columns", []):
                if column not in model["columns"]:  # MCTN's full condition and rates: not tested
                    continue
                summary = model["columns"][column][metric]
                tests = results["significance"][key].get(column, {}).get(metric, {})
                writer.writerow([
                    key, metric, column, summary["mean"], _blank(summary["std"]), len(summary["values"]),
                    _blank(tests.get("vs_baseline")), _blank(tests.get("vs_augmented")),
                ])
    return buffer.getvalue()


def _blank(value) -> str:
    return "" if value is None else repr(float(value))


def write_results(results: dict, output_dir: str) -> list[str]:
    """Writes results.md, results.csv and results.json, each via a temporary file and a rename."""
    contents = (to_markdown(results), to_csv(results), json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    paths = []
    for name, text in zip(RESULTS_FILES, contents):
        path = os.path.join(output_dir, name)
        atomic_files.write_text(path, text)
        paths.append(path)
    return paths
