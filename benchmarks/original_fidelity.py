"""Test UA per condition of our runs beside the original PyTorch MMIN's on identical data.

    python benchmarks/original_fidelity.py --folds=1,2 --seeds=0,1,2 \
        --ours=keras_init:runs/fidelity/keras_init --ours=original_init:runs/fidelity/original_init \
        --peer_dirs='/tmp/peers/f{fold}_s{seed}'

`--ours` entries are `name:experiment_dir`, each an `mmin_tf.experiment` output directory holding
`runs/<model>/fold<f>/seed<s>/metrics.json` for `--model` (MMIN) and `--baseline_model`.
`--peer_dirs` is the work directory pattern of `../shared/peer/run_mmin_peer.py` runs (its
`summary.json`: the original's own scripts on the same fold, exported by
`benchmarks/export_peer_npz.py`). Prints one markdown table (mean test UA over the runs per
condition, the pooled missing conditions and full modality), each of our rows' Welch t-test
p-values against the original's same model per column, and the per-run full-modality UA.
"""

import json
import os
import sys
from typing import Optional

import numpy as np
from absl import app, flags
from scipy import stats as scipy_stats

_OURS = flags.DEFINE_multi_string("ours", [], "name:experiment_dir of our runs.")
_MODEL = flags.DEFINE_string("model", "mmin", "Our MMIN model's directory name under runs/.")
_BASELINE_MODEL = flags.DEFINE_string("baseline_model", "baseline", "Our baseline's directory name under runs/.")
_PEER_DIRS = flags.DEFINE_string("peer_dirs", "/tmp/peers/f{fold}_s{seed}", "Pattern of the original's work directories.")
_FOLDS = flags.DEFINE_list("folds", ["1", "2"], "Folds.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds.")

# Column -> (our condition name, the original's name in its results).
COLUMNS = {
    "{a}": ("a", "azz"), "{v}": ("v", "zvz"), "{t}": ("t", "zzl"),
    "{a,v}": ("av", "avz"), "{a,t}": ("at", "azl"), "{v,t}": ("vt", "zvl"),
    "pooled missing": ("missing_pooled", "total"), "{a,v,t}": ("avt", "avl"),
}


def our_row(metrics: dict) -> dict:
    """Column -> UA of one of our metrics.json."""
    row = {}
    for column, (name, _) in COLUMNS.items():
        values = metrics["missing_pooled"] if name == "missing_pooled" else metrics["conditions"][name]
        row[column] = values["ua"]
    return row


def peer_row(results: dict) -> dict:
    """Column -> UA of the original's recomputed test results (`summary.json`)."""
    return {column: results[peer]["uar"] for column, (_, peer) in COLUMNS.items()}


def welch_p(a, b) -> Optional[float]:
    if len(a) < 2 or len(b) < 2:
        return None
    return float(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)


def collect(folds, seeds, read):
    """`read(fold, seed)` -> row or None, for every run; the rows that exist."""
    rows = [read(fold, seed) for fold in folds for seed in seeds]
    return [row for row in rows if row is not None]


def _read_json(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def main(argv):
    del argv
    folds, seeds = _FOLDS.value, [int(seed) for seed in _SEEDS.value]

    def peer(stage):
        def read(fold, seed):
            summary = _read_json(os.path.join(_PEER_DIRS.value.format(fold=fold, seed=seed), "summary.json"))
            return None if summary is None else peer_row(summary[stage])
        return read

    def ours(directory, model):
        def read(fold, seed):
            metrics = _read_json(os.path.join(directory, "runs", model, f"fold{fold}", f"seed{seed}", "metrics.json"))
            return None if metrics is None else our_row(metrics)
        return read

    tables = {"original MMIN": collect(folds, seeds, peer("mmin_test_recomputed")),
              "original baseline": collect(folds, seeds, peer("baseline_test_recomputed"))}
    compare = {}
    for entry in _OURS.value:
        name, _, directory = entry.partition(":")
        tables[f"{name} MMIN"] = collect(folds, seeds, ours(directory, _MODEL.value))
        tables[f"{name} baseline"] = collect(folds, seeds, ours(directory, _BASELINE_MODEL.value))
        compare[f"{name} MMIN"] = "original MMIN"
        compare[f"{name} baseline"] = "original baseline"
    print("| | runs | " + " | ".join(COLUMNS) + " |")
    print("|---|---:|" + "---:|" * len(COLUMNS))
    for name, rows in tables.items():
        if not rows:
            continue
        means = [np.mean([row[column] for row in rows]) for column in COLUMNS]
        print(f"| {name} | {len(rows)} | " + " | ".join(f"{value:.3f}" for value in means) + " |")
        reference = tables.get(compare.get(name, ""), [])
        if reference:
            p_values = [welch_p([row[c] for row in rows], [row[c] for row in reference]) for c in COLUMNS]
            print(f"| p vs {compare[name]} | | " + " | ".join("-" if p is None else f"{p:.3f}" for p in p_values) + " |")
    print()
    for name, rows in tables.items():
        if rows:
            print(f"{name} {{a,v,t}} per run: " + " ".join(f"{row['{a,v,t}']:.3f}" for row in rows))


if __name__ == "__main__":
    sys.exit(app.run(main))
