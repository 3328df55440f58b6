"""Test accuracy of MMIN trained with our step vs the original's computation, over several seeds.

    python benchmarks/reference_accuracy.py --flagfile=pipelines/demo.flags \
        --data_dir=data/synthetic --output_dir=runs/reference_accuracy --seeds=0,1,2

For each seed: the baseline teacher is trained once, then MMIN from it once per `--steps` entry
-- with our training (`ours`: `MMINTrainer`, encoders only where a modality is present, teacher
embeddings cached, batches grouped by acoustic length), as the original trains (`reference`:
`ReferenceMMINTrainer`, every encoder on every row, the teacher every step, on batches drawn at
random and padded to their longest utterance), and optionally our step on the original's
batches (`ours_unbucketed`). The steps optimise the same losses (tests/models/test_reference.py);
the runs differ in batch composition, dropout draws and float rounding.
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
from mmin_tf.models import construction  # noqa: E402
from mmin_tf.models.reference import ReferenceMMINTrainer  # noqa: E402
from mmin_tf.statistics import paired_t_test  # noqa: E402

_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds; each trains a teacher and an MMIN per step.")
_STEPS = flags.DEFINE_multi_enum(
    "steps", ["ours", "reference"], ["ours", "reference", "ours_unbucketed"],
    "MMIN trainings per seed: ours (our step, length-bucketed batches), reference (the "
    "original's computation on random batches padded to their longest utterance), "
    "ours_unbucketed (our step on the reference's batches: isolates the batching).")

# step -> (the original's computation, length-bucketed batches)
_STEP_SETTINGS = {"ours": (False, True), "reference": (True, False), "ours_unbucketed": (False, False)}


_build_mmin_trainer = construction.build_mmin_trainer


def _reference_trainer(*args, **kwargs):
    return ReferenceMMINTrainer.like(_build_mmin_trainer(*args, **kwargs))


def _epoch_seconds(run_dir):
    """Median `epoch_seconds` of a run, read back from its TensorBoard logs."""
    import tensorflow as tf
    from tensorboard.backend.event_processing import event_accumulator

    values = []
    for root, _, files in os.walk(os.path.join(run_dir, "logs", "train")):
        for name in files:
            if "tfevents" in name:
                events = event_accumulator.EventAccumulator(os.path.join(root, name), size_guidance={"tensors": 0})
                events.Reload()
                if "epoch_epoch_seconds" in events.Tags()["tensors"]:
                    values += [float(tf.make_ndarray(e.tensor_proto)) for e in events.Tensors("epoch_epoch_seconds")]
    return statistics.median(values[1:] or values) if values else float("nan")


def main(argv):
    del argv
    base = train.config_from_flags()
    results = {name: [] for name in _STEPS.value}
    for seed in (int(value) for value in _SEEDS.value):
        teacher_config = training.teacher_config(
            dataclasses.replace(base, output_dir=os.path.join(base.output_dir, f"seed{seed}"), seed=seed))
        training.run_training(teacher_config)
        for name in results:
            original_step, bucketed = _STEP_SETTINGS[name]
            config = dataclasses.replace(
                base, seed=seed, output_dir=os.path.join(base.output_dir, f"seed{seed}", name),
                pretrained_dir=teacher_config.output_dir,
                # Unbucketed: the original's batches, random and padded to their longest utterance.
                data=dataclasses.replace(base.data, bucket_by_length=bucketed),
            )
            if original_step:
                with mock.patch.object(training.construction, "build_mmin_trainer", _reference_trainer):
                    metrics = training.run_training(config)
            else:
                metrics = training.run_training(config)
            row = {
                "seed": seed,
                "missing_pooled_ua": metrics["missing_pooled"]["ua"],
                "full_ua": metrics["conditions"][list(metrics["conditions"])[-1]]["ua"],
                "epoch_seconds": _epoch_seconds(config.output_dir),
            }
            results[name].append(row)
            print(f"reference_accuracy step={name} " + " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    for name, rows in results.items():
        print(f"reference_accuracy_mean step={name} seeds={len(rows)} "
              f"missing_pooled_ua={statistics.mean(r['missing_pooled_ua'] for r in rows):.4f} "
              f"full_ua={statistics.mean(r['full_ua'] for r in rows):.4f} "
              f"epoch_seconds={statistics.median(r['epoch_seconds'] for r in rows):.2f}")
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
