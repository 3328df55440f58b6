"""Test accuracy, and time to accuracy, of MMIN trained with our step vs the original's
computation, over several seeds.

    python benchmarks/reference_accuracy.py --flagfile=pipelines/demo.flags \
        --data_dir=data/synthetic --output_dir=runs/reference_accuracy --seeds=0,1,2
    python benchmarks/reference_accuracy.py --flagfile=pipelines/demo.flags \
        --data_dir=data/synthetic --output_dir=runs/time_to_accuracy --seeds=0,1,2 \
        --steps=ours --steps=ours_all_conditions --steps=reference

For each seed: the baseline teacher is trained once, then MMIN from it once per `--steps` entry
-- with our training (`ours`: `MMINTrainer`, encoders only where a modality is present, teacher
embeddings cached, batches grouped by acoustic length), as the original trains (`reference`:
`ReferenceMMINTrainer`, every encoder on every row, the teacher every step, on batches drawn at
random and padded to their longest utterance), optionally our step on the original's
batches (`ours_unbucketed`) and our step in the paper's six-conditions regime
(`ours_all_conditions`: `--condition_mode=all`, each utterance's six conditions in one batch,
encoded once). The steps optimise the same losses (tests/models/test_reference.py); the runs
differ in batch composition, dropout draws and float rounding. `reference` follows
`--condition_mode` (default random, the original's regime); with `all` it trains the six
expanded rows of each utterance, every encoder on every row.

Time to accuracy: per seed, the target is the reference run's validation selection metric at its
last epoch (`val_selection`: UA pooled over the six missing conditions); each run's time to it is
the training seconds (`epoch_seconds`, validation excluded) summed up to the first epoch whose
validation metric reaches it (none: not reached).
Prints each run's test UA (pooled over the six missing conditions, and full), the means, the
median training seconds per epoch, and each step's mean difference to the reference with a
paired t-test over the seeds; writes reference_accuracy.json. Complete runs in `--output_dir`
are reused (so a later call with another `--steps` only trains what is new).
"""

import dataclasses
import os
import statistics
import sys
from unittest import mock

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmin_tf import atomic_files, train, training  # noqa: E402
from mmin_tf.data.pipeline import ConditionMode  # noqa: E402
from mmin_tf.models import construction  # noqa: E402
from mmin_tf.models.reference import ReferenceMMINTrainer  # noqa: E402
from mmin_tf.statistics import paired_t_test  # noqa: E402

_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds; each trains a teacher and an MMIN per step.")
_STEPS = flags.DEFINE_multi_enum(
    "steps", ["ours", "reference"], ["ours", "reference", "ours_unbucketed", "ours_all_conditions"],
    "MMIN trainings per seed: ours (our step, length-bucketed batches), reference (the "
    "original's computation on random batches padded to their longest utterance), "
    "ours_unbucketed (our step on the reference's batches: isolates the batching), "
    "ours_all_conditions (our step, the paper's six-conditions regime).")

# step -> (the original's computation, length-bucketed batches, condition mode override)
_STEP_SETTINGS = {
    "ours": (False, True, None),
    "reference": (True, False, None),
    "ours_unbucketed": (False, False, None),
    "ours_all_conditions": (False, True, ConditionMode.ALL),
}


_build_mmin_trainer = construction.build_mmin_trainer


def _reference_trainer(*args, **kwargs):
    return ReferenceMMINTrainer.like(_build_mmin_trainer(*args, **kwargs))


def _epoch_series(run_dir, log_run, tag):
    """`[value per epoch]` of one scalar of a run, read back from its TensorBoard logs (`log_run`:
    train or validation), in epoch order."""
    import tensorflow as tf
    from tensorboard.backend.event_processing import event_accumulator

    values = {}
    for root, _, files in os.walk(os.path.join(run_dir, "logs", log_run)):
        for name in files:
            if "tfevents" in name:
                events = event_accumulator.EventAccumulator(os.path.join(root, name), size_guidance={"tensors": 0})
                events.Reload()
                if tag in events.Tags()["tensors"]:
                    values.update({e.step: float(tf.make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)})
    return [values[step] for step in sorted(values)]


def _median_epoch_seconds(values):
    """Median of a run's `epoch_seconds` (its first epoch, which traces the step, left out)."""
    return statistics.median(values[1:] or values) if values else float("nan")


def seconds_to_reach(epoch_seconds, validation, target):
    """Training seconds up to the first epoch whose `validation` value reaches `target`; None if none does."""
    elapsed = 0.0
    for seconds, value in zip(epoch_seconds, validation):
        elapsed += seconds
        if value >= target:
            return elapsed
    return None


def main(argv):
    del argv
    base = train.config_from_flags()
    results = {name: [] for name in _STEPS.value}
    series = {}  # (step, seed) -> (epoch seconds, validation selection metric per epoch)
    for seed in (int(value) for value in _SEEDS.value):
        teacher_config = training.teacher_config(
            dataclasses.replace(base, output_dir=os.path.join(base.output_dir, f"seed{seed}"), seed=seed))
        training.run_training(teacher_config)
        for name in results:
            original_step, bucketed, condition_mode = _STEP_SETTINGS[name]
            config = dataclasses.replace(
                base, seed=seed, output_dir=os.path.join(base.output_dir, f"seed{seed}", name),
                pretrained_dir=teacher_config.output_dir,
                # Unbucketed: the original's batches, random and padded to their longest utterance.
                data=dataclasses.replace(base.data, bucket_by_length=bucketed),
                condition_mode=condition_mode or base.condition_mode,
            )
            if original_step:
                # The original's computation: its trainer, and in the six-conditions regime the
                # expanded rows (not our grouped batches, which its step would not see).
                with mock.patch.object(training.construction, "build_mmin_trainer", _reference_trainer), \
                        mock.patch.object(training, "groups_conditions", lambda config: False):
                    metrics = training.run_training(config)
            else:
                metrics = training.run_training(config)
            epoch_seconds = _epoch_series(config.output_dir, "train", "epoch_epoch_seconds")
            row = {
                "seed": seed,
                "missing_pooled_ua": metrics["missing_pooled"]["ua"],
                "full_ua": metrics["conditions"][list(metrics["conditions"])[-1]]["ua"],
                "epoch_seconds": _median_epoch_seconds(epoch_seconds),
                "training_seconds": sum(epoch_seconds),
            }
            series[(name, seed)] = (epoch_seconds, _epoch_series(config.output_dir, "validation", "epoch_selection"))
            results[name].append(row)
            print(f"reference_accuracy step={name} " + " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    for name, rows in results.items():
        print(f"reference_accuracy_mean step={name} seeds={len(rows)} "
              f"missing_pooled_ua={statistics.mean(r['missing_pooled_ua'] for r in rows):.4f} "
              f"full_ua={statistics.mean(r['full_ua'] for r in rows):.4f} "
              f"epoch_seconds={statistics.median(r['epoch_seconds'] for r in rows):.2f}")
    if "reference" in results:
        for name, rows in results.items():
            reached = []
            for row in rows:
                target = series[("reference", row["seed"])][1][-1]
                row["reference_final_validation"] = target
                row["seconds_to_reference_final_validation"] = seconds_to_reach(*series[(name, row["seed"])], target)
                reached.append(row["seconds_to_reference_final_validation"])
            times = [value for value in reached if value is not None]
            print(f"time_to_accuracy step={name} reached={len(times)}/{len(reached)} "
                  f"mean_seconds={statistics.mean(times) if times else float('nan'):.1f} "
                  f"per_seed={','.join('-' if value is None else f'{value:.1f}' for value in reached)} "
                  f"mean_training_seconds={statistics.mean(r['training_seconds'] for r in rows):.1f} "
                  f"test_missing_pooled_ua={statistics.mean(r['missing_pooled_ua'] for r in rows):.4f}")
    for name in results:
        if name == "reference" or "reference" not in results:
            continue
        for metric in ("missing_pooled_ua", "full_ua"):
            test = paired_t_test({row["seed"]: row[metric] for row in results[name]},
                                 {row["seed"]: row[metric] for row in results["reference"]})
            if test.p_value is not None:
                print(f"reference_accuracy_difference step={name} metric={metric} "
                      f"mean_minus_reference={test.mean_difference:+.4f} paired_t_p={test.p_value:.3f}")
    atomic_files.write_json(os.path.join(base.output_dir, "reference_accuracy.json"), results)


if __name__ == "__main__":
    app.run(main)
