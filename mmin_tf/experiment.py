"""Runs the paper's cross-validation protocol and writes its tables (Tables 5-7).

    python -m mmin_tf.experiment --flagfile=pipelines/iemocap.flags --data_dir=data/iemocap \
        --models=baseline,augmented,mmin --folds=all --seeds=3 --output_dir=runs/iemocap_experiment

Takes every training flag (`python -m mmin_tf.train`); `--model`, `--fold`, `--seed`,
`--pretrained_dir` and `--condition` are set per run, and `--condition_mode` applies to the MMIN
models only. Every (model, fold, seed) run is one `python -m mmin_tf.train` process into
OUTPUT_DIR/runs/<model>/fold<f>/seed<s> (log beside it, `.log`); MMIN models use the baseline run
of the same fold and seed as teacher. Complete runs are skipped, so re-running an interrupted
experiment resumes it. Then results.md, results.csv, results.json and figures/ are written.

Several machines share one experiment directory with `--num_shards=N --shard_index=i` (i = 0..N-1;
by default from a SLURM job array or a Kubernetes Indexed Job); shards do not aggregate: run the
same command with `--aggregate_only` when all have finished. See docs/experiments.md.
"""

import os

from absl import app, flags, logging

from mmin_tf import cli
from mmin_tf import atomic_files, experiment_plan, figures, results, train
from mmin_tf.data import format as format_lib
from mmin_tf.run_dir import RunError

FLAGS = flags.FLAGS
EXPERIMENT_FLAGS = "experiment.flags"
# Training flags set for each run, so left out of experiment.flags.
PER_RUN_FLAGS = ("model", "fold", "seed", "output_dir", "pretrained_dir", "condition", "condition_mode", "data_dir")

_MODELS = flags.DEFINE_list(
    "models", ["baseline", "augmented", "mmin"],
    "Models: baseline, augmented, mmin, mmin_ae, mmin_nocycle, matched (one per test condition) "
    "or matched_<condition>, mctn (one MCTN per missing condition: Table 5's MCTN row) or mctn_<condition>.")
_FOLDS = flags.DEFINE_list("folds", ["all"], "'all' (the dataset's folds) or fold names, e.g. 1,2.")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Runs per model and fold, with seeds 0..N-1.", lower_bound=1)
_NUM_SHARDS = flags.DEFINE_integer(
    "num_shards", None, "Machines sharing the experiment (default: SLURM_ARRAY_TASK_COUNT, else 1).", lower_bound=1)
_SHARD_INDEX = flags.DEFINE_integer(
    "shard_index", None, "This machine's shard, 0..num_shards-1 (default: the SLURM array task, or a Kubernetes "
    "Indexed Job's JOB_COMPLETION_INDEX, else 0).", lower_bound=0)
_AGGREGATE_ONLY = flags.DEFINE_bool("aggregate_only", False, "Train nothing; aggregate the complete runs.")
_METRICS = flags.DEFINE_list(
    "metrics", None, "Metrics of the tables (default by --selection_metric: ua -> wa,ua; f1 -> f1).")


def _shared_training_flags() -> list:
    shared = [flag for flag in FLAGS.get_flags_for_module(train) if flag.name not in PER_RUN_FLAGS]
    return sorted((flag for flag in shared if flag.value is not None), key=lambda flag: flag.name)


def training_flags() -> str:
    """The training flags shared by every run, one `--name=value` per line."""
    return "".join(flag.serialize() + "\n" for flag in _shared_training_flags())


def _flag_name(line: str) -> str:
    name = line.split("=", 1)[0].lstrip("-")
    return name[2:] if "=" not in line and name.startswith("no") else name


def write_experiment_flags(output_dir: str) -> str:
    """Writes experiment.flags, or checks that an existing one holds the same flags.

    A flag missing from an existing file but at its default here (a flag this version of mmin_tf
    added) is no difference: the file is rewritten with it; any other difference is an error.
    """
    path = os.path.join(output_dir, EXPERIMENT_FLAGS)
    text = training_flags()
    if os.path.exists(path):
        with open(path) as f:
            previous = f.read()
        if previous != text:
            previous_names = {_flag_name(line) for line in previous.splitlines()}
            added_at_default = {
                flag.serialize() for flag in _shared_training_flags()
                if flag.name not in previous_names and flag.value == flag.default
            }
            changed = sorted((set(previous.splitlines()) ^ set(text.splitlines())) - added_at_default)
            if changed:
                raise RunError(
                    f"{output_dir!r} holds an experiment with other training flags (differences: {changed}); "
                    "use another --output_dir"
                )
            atomic_files.write_text(path, text)
        return path
    os.makedirs(output_dir, exist_ok=True)
    atomic_files.write_text(path, text)  # shards may start at the same time: pid-named temp files
    return path


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if not FLAGS.data_dir or not FLAGS.output_dir:
        raise app.UsageError("--data_dir and --output_dir are required")
    if FLAGS.pretrained_dir or FLAGS.condition:
        raise app.UsageError("--pretrained_dir and --condition are set per run by the experiment")
    num_shards, shard_index = experiment_plan.resolve_shard(_NUM_SHARDS.value, _SHARD_INDEX.value, os.environ)
    output_dir = FLAGS.output_dir
    info = format_lib.load_info(FLAGS.data_dir)
    runs = experiment_plan.plan_runs(
        experiment_plan.model_keys(_MODELS.value, info.modalities),
        experiment_plan.resolve_folds(_FOLDS.value, info.fold_names),
        experiment_plan.seed_values(_SEEDS.value),
        output_dir,
    )
    metrics = results.parse_metrics(_METRICS.value or results.default_metrics(FLAGS.selection_metric.value))
    if not _AGGREGATE_ONLY.value:
        flagfile = write_experiment_flags(output_dir)
        mmin_arguments = [f"--condition_mode={FLAGS.condition_mode.value}"] if FLAGS.condition_mode else []
        experiment_plan.execute(
            experiment_plan.shard(runs, num_shards, shard_index),
            flagfile, [f"--data_dir={FLAGS.data_dir}"], mmin_arguments,
        )
        if num_shards > 1:
            logging.info("Shard %d of %d done; aggregate with --aggregate_only when every shard is.",
                         shard_index, num_shards)
            return
    aggregated = results.aggregate(runs, output_dir, info.name, metrics)
    written = results.write_results(aggregated, output_dir)
    written += figures.write_experiment_figures(aggregated, output_dir)
    logging.info("Wrote %s", ", ".join(written))


def run():
    cli.run_main(main, "mmin_tf.experiment")


if __name__ == "__main__":
    run()
