"""The runs of a cross-validation experiment: which (model, fold, seed), where, in which order.

An experiment directory holds

    experiment.flags                         the training flags shared by every run
    runs/<model>[_<condition>]/fold<fold>/seed<seed>/        one training run each (see training.py)
    runs/<model>[_<condition>]/fold<fold>/seed<seed>.log     its stdout and stderr
    results.md  results.csv  results.json    the aggregated tables (results.py)

Model keys name a row of the result tables: `baseline`, `augmented`, `mmin`, `mmin_ae`,
`mmin_nocycle`, and `matched_<condition>` (the baseline trained and tested on one condition,
Table 7); `mctn_<condition>` is the MCTN of one missing condition, and the six of a fold and seed
together make Table 5's MCTN row (results.py). MMIN and its ablations take the `baseline` run of the same fold and seed as their
teacher, so the plan lists every baseline run first and adds the baseline when an MMIN model is
asked for without it.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from typing import Iterable, Mapping, Optional, Sequence

from absl import logging

from mmin_tf import modalities as modalities_lib
from mmin_tf.configs import ModelKind
from mmin_tf.run_dir import METRICS, RunError

RUNS_DIR = "runs"
MATCHED_PREFIX = f"{ModelKind.MATCHED.value}_"
MCTN_PREFIX = f"{ModelKind.MCTN.value}_"


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run of an experiment.

    Attributes:
        model: what `python -m mmin_tf.train --model=...` trains.
        fold: fold name in the dataset's folds.json.
        seed: the run's `--seed`.
        output_dir: its run directory.
        condition: training condition of a matched baseline or an MCTN (`--condition`); None otherwise.
        pretrained_dir: MMIN's teacher, the baseline run of the same fold and seed; None otherwise.
    """

    model: ModelKind
    fold: str
    seed: int
    output_dir: str
    condition: Optional[str] = None
    pretrained_dir: Optional[str] = None

    @property
    def key(self) -> str:
        """The model key: `mmin`, `matched_at`, `mctn_at`, ..."""
        return model_key(self.model, self.condition)

    @property
    def log_path(self) -> str:
        return f"{self.output_dir}.log"

    @property
    def is_complete(self) -> bool:
        """metrics.json is written last: it marks a finished run."""
        return os.path.exists(os.path.join(self.output_dir, METRICS))

    def train_arguments(self) -> list[str]:
        """The per-run flags of `python -m mmin_tf.train`."""
        arguments = [
            f"--model={self.model.value}",
            f"--fold={self.fold}",
            f"--seed={self.seed}",
            f"--output_dir={self.output_dir}",
        ]
        if self.condition is not None:
            arguments.append(f"--condition={self.condition}")
        if self.pretrained_dir is not None:
            arguments.append(f"--pretrained_dir={self.pretrained_dir}")
        return arguments


def model_key(model: ModelKind, condition: Optional[str] = None) -> str:
    return f"{model.value}_{condition}" if model.has_condition else model.value


def parse_model_key(key: str) -> tuple[ModelKind, Optional[str]]:
    """`"mmin"` -> (MMIN, None); `"matched_at"` -> (MATCHED, "at"); `"mctn_at"` -> (MCTN, "at");
    `"mctn"` -> (MCTN, None)."""
    if key.startswith(MATCHED_PREFIX):
        return ModelKind.MATCHED, key[len(MATCHED_PREFIX):]
    if key.startswith(MCTN_PREFIX):
        return ModelKind.MCTN, key[len(MCTN_PREFIX):]
    try:
        kind = ModelKind(key)
    except ValueError:
        raise ValueError(
            f"Unknown model {key!r}; expected one of {[kind.value for kind in ModelKind]}, "
            "matched_<condition> (e.g. matched_at) or mctn_<condition> (e.g. mctn_at)"
        ) from None
    return kind, None


def model_keys(entries: Sequence[str], modalities: Sequence[modalities_lib.ModalitySpec]) -> tuple[str, ...]:
    """Expands `--models` entries into model keys, checked against the dataset's modalities.

    `matched` stands for one matched baseline per test condition (`matched_a` ... `matched_avt`);
    `matched_<condition>` asks for one of them. `mctn` stands for one MCTN per missing condition
    (`mctn_a` ... `mctn_vt`; MCTN has no full-condition model), `mctn_<condition>` for one.
    """
    if not entries:
        raise ValueError("`models` must name at least one model. Received: []")
    keys = []
    for entry in entries:
        kind, condition = parse_model_key(entry.strip().lower())
        if kind is ModelKind.MATCHED and condition is None:
            keys += [model_key(kind, c.name) for c in modalities_lib.evaluation_conditions(modalities)]
        elif kind is ModelKind.MCTN and condition is None:
            keys += [model_key(kind, c.name) for c in modalities_lib.missing_conditions(modalities)]
        elif kind.has_condition:
            parsed = modalities_lib.parse_condition(condition, modalities)
            if kind is ModelKind.MCTN and parsed.is_full:
                raise ValueError(
                    f"MCTN translates available modalities into missing ones: there is no MCTN of the full "
                    f"condition. Received: {entry!r}")
            keys.append(model_key(kind, parsed.name))
        else:
            keys.append(kind.value)
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise ValueError(f"`models` names {duplicates} more than once. Received: {list(entries)}")
    return tuple(keys)


def resolve_folds(entries: Sequence[str], fold_names: Sequence[str]) -> tuple[str, ...]:
    """`["all"]` -> every fold of the dataset, in its order; otherwise the listed folds, checked."""
    entries = [entry.strip() for entry in entries]
    if entries == ["all"]:
        return tuple(fold_names)
    unknown = [entry for entry in entries if entry not in fold_names]
    if not entries or unknown:
        raise ValueError(
            f"`folds` must be 'all' or folds of the dataset ({list(fold_names)}). Received: {entries}"
        )
    if len(set(entries)) != len(entries):
        raise ValueError(f"`folds` lists a fold more than once. Received: {entries}")
    return tuple(entries)


def seed_values(count: int) -> tuple[int, ...]:
    """`--seeds=N` runs every model with seeds 0 .. N-1."""
    if count < 1:
        raise ValueError(f"`seeds` must be >= 1. Received: {count}")
    return tuple(range(count))


def run_dir(output_dir: str, key: str, fold: str, seed: int) -> str:
    return os.path.join(output_dir, RUNS_DIR, key, f"fold{fold}", f"seed{seed}")


def plan_runs(keys: Sequence[str], folds: Sequence[str], seeds: Sequence[int], output_dir: str) -> tuple[Run, ...]:
    """Every (model, fold, seed) run; baselines first, then the models in the order given."""
    kinds = [parse_model_key(key) for key in keys]
    keys = list(keys)
    if any(kind.is_mmin for kind, _ in kinds) and ModelKind.BASELINE.value not in keys:
        keys.insert(0, ModelKind.BASELINE.value)
    keys.sort(key=lambda key: key != ModelKind.BASELINE.value)  # stable: only moves the baseline
    runs = []
    for key in keys:
        kind, condition = parse_model_key(key)
        for fold in folds:
            for seed in seeds:
                teacher = run_dir(output_dir, ModelKind.BASELINE.value, fold, seed) if kind.is_mmin else None
                runs.append(Run(kind, fold, seed, run_dir(output_dir, key, fold, seed), condition, teacher))
    return tuple(runs)


def shard(runs: Sequence[Run], num_shards: int, shard_index: int) -> tuple[Run, ...]:
    """The runs of one of `num_shards` machines sharing the experiment directory.

    Run i of the plan goes to shard i % num_shards, except that an MMIN run goes to the shard of
    its teacher, so no shard waits for another. Order within a shard is the plan's.
    """
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(
            f"Expected num_shards >= 1 and 0 <= shard_index < num_shards. "
            f"Received: num_shards={num_shards}, shard_index={shard_index}"
        )
    index = {run.output_dir: i for i, run in enumerate(runs)}
    for run in runs:
        if run.pretrained_dir is not None and run.pretrained_dir not in index:
            raise ValueError(f"The teacher {run.pretrained_dir!r} of {run.output_dir!r} is not in the plan")
    return tuple(
        run for run in runs
        if index[run.pretrained_dir or run.output_dir] % num_shards == shard_index
    )


def scheduler_shard(environ: Mapping[str, str]) -> tuple[Optional[int], Optional[int]]:
    """`(shard_index, num_shards)` from a cluster scheduler's environment, None where it says nothing.

    SLURM job arrays (`sbatch --array=0-N`): `SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN` and
    `SLURM_ARRAY_TASK_COUNT`. Kubernetes Indexed Jobs set `JOB_COMPLETION_INDEX` (not the
    number of completions: give `--num_shards`).

    Raises:
        ValueError: a variable that is not an integer, naming it.
    """
    def integer(name):
        value = environ.get(name)
        if value is None or value == "":
            return None
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"Environment variable {name}={value!r} is not an integer") from None

    if integer("SLURM_ARRAY_TASK_ID") is not None:
        return integer("SLURM_ARRAY_TASK_ID") - (integer("SLURM_ARRAY_TASK_MIN") or 0), integer("SLURM_ARRAY_TASK_COUNT")
    return integer("JOB_COMPLETION_INDEX"), None


def resolve_shard(num_shards: Optional[int], shard_index: Optional[int], environ: Mapping[str, str]) -> tuple[int, int]:
    """`(num_shards, shard_index)`: the flags where given, else the scheduler's, else one shard."""
    index, count = scheduler_shard(environ)
    num_shards = num_shards if num_shards is not None else (count if count is not None else 1)
    shard_index = shard_index if shard_index is not None else (index if index is not None else 0)
    if index is not None and count is None and num_shards == 1 and shard_index > 0:
        raise ValueError(
            f"JOB_COMPLETION_INDEX={shard_index} but one shard: give --num_shards, the Job's completions")
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(
            f"Expected num_shards >= 1 and 0 <= shard_index < num_shards. Received: num_shards={num_shards}, "
            f"shard_index={shard_index}")
    return num_shards, shard_index


def train_command(run: Run, flagfile: str, shared_arguments: Iterable[str] = ()) -> list[str]:
    """`python -m mmin_tf.train --flagfile=FLAGFILE [shared_arguments] <the run's flags>`."""
    return [sys.executable, "-m", "mmin_tf.train", f"--flagfile={flagfile}", *shared_arguments,
            *run.train_arguments()]


def execute(runs: Sequence[Run], flagfile: str, shared_arguments: Iterable[str] = (),
            mmin_arguments: Iterable[str] = ()) -> list[Run]:
    """Trains every incomplete run, one subprocess each, in order; returns the runs trained.

    Complete runs (metrics.json present) are skipped, so re-running an interrupted experiment
    resumes it; an unfinished run resumes after its last finished epoch (training.py). Each
    run's output is appended to `<run_dir>.log`. A failing run stops the experiment.

    Args:
        flagfile: the experiment's training flags.
        shared_arguments: flags added to every run (e.g. `--data_dir`).
        mmin_arguments: flags added to MMIN runs only (e.g. `--condition_mode=all`).

    Raises:
        RunError: a run exited with an error; the message names its log.
    """
    shared_arguments, mmin_arguments = list(shared_arguments), list(mmin_arguments)
    trained = []
    for number, run in enumerate(runs, 1):
        if run.is_complete:
            logging.info("[%d/%d] %s is complete", number, len(runs), run.output_dir)
            continue
        command = train_command(run, flagfile, shared_arguments + (mmin_arguments if run.model.is_mmin else []))
        logging.info("[%d/%d] training %s (log: %s)", number, len(runs), run.output_dir, run.log_path)
        os.makedirs(os.path.dirname(run.log_path), exist_ok=True)
        start = time.perf_counter()
        with open(run.log_path, "a") as log:
            log.write(f"$ {' '.join(command)}\n")
            log.flush()
            returncode = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode
        if returncode != 0 or not run.is_complete:
            raise RunError(
                f"Run {run.output_dir!r} failed (exit code {returncode}); see its log {run.log_path!r}:\n"
                + _tail(run.log_path)
            )
        logging.info("[%d/%d] %s done in %.0f s", number, len(runs), run.output_dir, time.perf_counter() - start)
        trained.append(run)
    return trained


def _tail(path: str, lines: int = 5) -> str:
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-lines:])
