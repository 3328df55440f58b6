"""Re-evaluates a trained run under every test condition (six missing + full).

    python -m mmin_tf.evaluate --run_dir=runs/demo/mmin [--data_dir=DATA] [--output_dir=DIR]

Loads the run's `best.keras` and `config.json`, scores the fold's test split of the run's dataset
(or `--data_dir`, which must have the model's modalities and labels) and writes `metrics.json`
(the schema training writes, `best_epoch` from best.json) and `confusion_matrices.json` to the run
directory, or to `--output_dir` (required with another dataset). On the run's own data the result
equals training's metrics.json.
"""

import json

from absl import app, flags

from mmin_tf import cli

from mmin_tf.evaluation import evaluate_run

_RUN_DIR = flags.DEFINE_string("run_dir", None, "A training run directory.", required=True)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Dataset to evaluate on (default: the run's).")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where to write metrics.json (default: --run_dir).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    result = evaluate_run(_RUN_DIR.value, _DATA_DIR.value, _OUTPUT_DIR.value)
    print(json.dumps(result, indent=2))


def run():
    cli.run_main(main, "mmin_tf.evaluate")


if __name__ == "__main__":
    run()
