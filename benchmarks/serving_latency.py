r"""CPU latency and throughput of the exported MMIN, per missing-modality condition.

Builds an MMIN at the paper's sizes (acoustic 130, visual 342, text 1024; the default
ModelConfig) with random, untrained weights and identity normalization statistics. The served
graph is the one a trained export has (normalization included); only the weights differ, which
does not change the cost. It is written with `mmin_tf.export.export_model` into a temporary
directory, loaded back with `tf.saved_model.load`, and its signatures are called in-process:

- batch 1, `serving_default`: the full condition `avt` and each missing condition
  (a v t av at vt), `--requests` requests each after `--warmup` untimed ones;
- batch 1, `serve_examples` (serialized SequenceExamples), full condition: parsing cost;
- batch `--batch_size`, `serving_default`: all-full batches, and batches mixing the six missing
  conditions (row i has condition i mod 6), `--batches` batches each.

Request lengths are IEMOCAP-like: each utterance draws its frame counts from a log-normal around
acoustic 150 / visual 50 / text 22 (sigma `--length_sigma`, 0.35 as `mmin_tf.data.synthetic`;
0 sends every request at exactly those lengths), with a fixed seed.
Every round draws one utterance (or one batch of them) and sends it under every condition being
compared, in shuffled order: the conditions see the same lengths and the same machine load, so
the ratios printed at the end hold even on a shared machine. Timed: the signature call and
reading its probabilities back; not timed: drawing the features, serializing them, and making
the input tensors.

    python benchmarks/serving_latency.py --quick     # 50 requests, 10 batches of 64
    python benchmarks/serving_latency.py             # 200 requests, 30 batches of 64
    python benchmarks/serving_latency.py --length_sigma=0 --requests=1000 --batches=5   # at the mean lengths

Each measurement prints one line:

    serving signature=serving_default condition=avt batch=1 p50_ms=... p99_ms=... mean_ms=...
    serving signature=serving_default condition=mixed_missing batch=64 utterances_per_second=...
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from typing import Callable, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.served_model import Timing, build_random_mmin  # noqa: E402
from mmin_tf import client  # noqa: E402
from mmin_tf import modalities as modalities_lib  # noqa: E402
from mmin_tf.configs import ModelConfig, ModelKind  # noqa: E402
from mmin_tf.data import format as format_lib  # noqa: E402
from mmin_tf.data import synthetic  # noqa: E402
from mmin_tf.export import EXAMPLES_SIGNATURE, SERVING_SIGNATURE, export_model  # noqa: E402

LENGTH_SIGMA = 0.35  # log-normal spread of utterance lengths, as in mmin_tf.data.synthetic

_QUICK = flags.DEFINE_bool("quick", False, "50 requests and 10 batches, whatever the flags say.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the weights, the lengths and the features.")
_REQUESTS = flags.DEFINE_integer("requests", 200, "Timed batch-1 requests per condition.", lower_bound=2)
_BATCHES = flags.DEFINE_integer("batches", 30, "Timed batches per throughput measurement.", lower_bound=1)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Utterances per throughput batch.", lower_bound=2)
_WARMUP = flags.DEFINE_integer("warmup", 10, "Untimed rounds (one call per case) before timing.", lower_bound=1)
_LENGTH_SIGMA = flags.DEFINE_float(
    "length_sigma", LENGTH_SIGMA, "Log-normal sigma of the request lengths around 150 / 50 / 22 frames; 0: exactly those.",
    lower_bound=0.0)
_INTRA_OP_THREADS = flags.DEFINE_integer(
    "intra_op_threads", 0, "tf.config.threading intra-op threads (within one op); 0 keeps TF's default.",
    lower_bound=0)
_INTER_OP_THREADS = flags.DEFINE_integer(
    "inter_op_threads", 0, "tf.config.threading inter-op threads (ops run at once); 0 keeps TF's default.",
    lower_bound=0)

QUICK_REQUESTS = 50
QUICK_BATCHES = 10
MIXED_MISSING = "mixed_missing"


@dataclasses.dataclass(frozen=True)
class Case:
    """One timed series: `make(utterances)` gives the signature's keyword tensors."""

    signature: str
    condition: str
    make: Callable[[list[dict]], dict]


def draw_utterances(rng, modalities, mean_lengths: Mapping[str, float], count: int,
                     length_sigma: float = LENGTH_SIGMA) -> list[dict]:
    """`count` utterances `{name: (time, dim) float32}`, lengths log-normal (sigma `length_sigma`) around the means."""
    utterances = []
    for _ in range(count):
        utterance = {}
        for spec in modalities:
            length = max(1, int(round(mean_lengths[spec.name] * rng.lognormal(0.0, length_sigma))))
            utterance[spec.name] = rng.standard_normal((length, spec.feature_dim), dtype=np.float32)
        utterances.append(utterance)
    return utterances


def _select(utterance: dict, modalities, condition: modalities_lib.Condition) -> dict:
    return {spec.name: utterance[spec.name] for spec, on in zip(modalities, condition.available) if on}


def tensor_case(modalities, conditions: Sequence[modalities_lib.Condition], name: str) -> Case:
    """`serving_default` on utterances under `conditions` (row i gets conditions[i mod len])."""

    def make(utterances):
        examples = [
            _select(utterance, modalities, conditions[row % len(conditions)])
            for row, utterance in enumerate(utterances)
        ]
        return {key: tf.constant(value) for key, value in client.batch_tensors(examples, modalities).items()}

    return Case(SERVING_SIGNATURE, name, make)


def examples_case(modalities, condition: modalities_lib.Condition) -> Case:
    """`serve_examples` on serialized SequenceExamples under `condition`."""

    def make(utterances):
        serialized = [
            format_lib.serialize_utterance(
                format_lib.Utterance(f"request-{row}", "", "", 0, _select(utterance, modalities, condition)),
                modalities,
            )
            for row, utterance in enumerate(utterances)
        ]
        return {"examples": tf.constant(serialized)}

    return Case(EXAMPLES_SIGNATURE, condition.name, make)


def time_interleaved(signatures, cases: Sequence[Case], batch: int, rounds: int, warmup: int, rng,
                     modalities, mean_lengths, length_sigma: float = LENGTH_SIGMA) -> list[Timing]:
    """Times every case once per round on the same drawn utterances, in shuffled order."""
    seconds = [[] for _ in cases]
    for round_index in range(warmup + rounds):
        utterances = draw_utterances(rng, modalities, mean_lengths, batch, length_sigma)
        for index in rng.permutation(len(cases)):
            case = cases[index]
            inputs = case.make(utterances)
            function = signatures[case.signature]
            start = time.perf_counter()
            function(**inputs)["probabilities"].numpy()
            elapsed = time.perf_counter() - start
            if round_index >= warmup:
                seconds[index].append(elapsed)
    return [
        Timing(case.signature, case.condition, batch, tuple(values)) for case, values in zip(cases, seconds)
    ]


def measure(signatures, modalities, mean_lengths: Mapping[str, float], requests: int, batches: int,
            batch_size: int, warmup: int, seed: int, length_sigma: float = LENGTH_SIGMA) -> list[Timing]:
    """All measurements: batch-1 latency per condition and signature, then batch throughput.

    Args:
        signatures: the loaded SavedModel's `signatures` (both `serving_default` and `serve_examples`).
        modalities: the model's modalities.
        mean_lengths: modality name -> typical frame count.
        requests: timed batch-1 requests per case.
        batches: timed batches per throughput case.
        batch_size: utterances per throughput batch.
        warmup: untimed rounds before each series.
        seed: seed of the lengths, the features and the order of the cases.
        length_sigma: log-normal sigma of the lengths around `mean_lengths` (0: exactly those).

    Returns:
        Batch-1 `serving_default` timings for every evaluation condition (a v t av at vt avt),
        batch-1 `serve_examples` for avt, then batch-`batch_size` `serving_default` for avt and
        `mixed_missing`.
    """
    rng = np.random.default_rng(seed)
    full = modalities_lib.full_condition(modalities)
    missing = modalities_lib.missing_conditions(modalities)
    latency_cases = [tensor_case(modalities, [c], c.name) for c in missing + (full,)]
    latency_cases.append(examples_case(modalities, full))
    throughput_cases = [tensor_case(modalities, [full], full.name), tensor_case(modalities, missing, MIXED_MISSING)]
    timings = time_interleaved(signatures, latency_cases, 1, requests, warmup, rng, modalities, mean_lengths,
                               length_sigma)
    timings += time_interleaved(
        signatures, throughput_cases, batch_size, batches, warmup, rng, modalities, mean_lengths, length_sigma
    )
    return timings


def ratios(timings: Sequence[Timing], modalities) -> dict[str, float]:
    """Same-run ratios: p50 of each missing condition / p50 of avt (batch 1), serve_examples p50 /
    serving_default p50 (avt, batch 1), and mixed_missing / avt throughput (largest batch)."""
    full = modalities_lib.full_condition(modalities).name
    single = {(t.signature, t.condition): t for t in timings if t.batch == 1}
    batched = {t.condition: t for t in timings if t.batch > 1}
    base = single[(SERVING_SIGNATURE, full)].p50_ms
    result = {
        f"p50_{c.name}_over_{full}": single[(SERVING_SIGNATURE, c.name)].p50_ms / base
        for c in modalities_lib.missing_conditions(modalities)
    }
    result[f"p50_{EXAMPLES_SIGNATURE}_over_{SERVING_SIGNATURE}"] = single[(EXAMPLES_SIGNATURE, full)].p50_ms / base
    if batched:
        result[f"throughput_{MIXED_MISSING}_over_{full}"] = (
            batched[MIXED_MISSING].utterances_per_second / batched[full].utterances_per_second
        )
    return result


def export_and_load(model, modalities, label_names, export_dir: str):
    """Exports with `export_model` (no TF Serving warm-up file: the loader here does not read it)."""
    return tf.saved_model.load(export_model(model, modalities, label_names, export_dir, warmup=False))


def main(argv):
    del argv
    if _INTRA_OP_THREADS.value:
        tf.config.threading.set_intra_op_parallelism_threads(_INTRA_OP_THREADS.value)
    if _INTER_OP_THREADS.value:
        tf.config.threading.set_inter_op_parallelism_threads(_INTER_OP_THREADS.value)
    requests = QUICK_REQUESTS if _QUICK.value else _REQUESTS.value
    batches = QUICK_BATCHES if _QUICK.value else _BATCHES.value
    modalities = modalities_lib.DEFAULT_MODALITIES
    mean_lengths = synthetic.DEFAULT_MEAN_LENGTHS
    print("serving setup weights=random_untrained (same graph as a trained export) dims="
          + "/".join(str(spec.feature_dim) for spec in modalities)
          + " mean_lengths=" + "/".join(str(mean_lengths[spec.name]) for spec in modalities)
          + f" length_sigma={_LENGTH_SIGMA.value:g} requests={requests} batches={batches} batch_size={_BATCH_SIZE.value} "
          f"cpu_count={os.cpu_count()} intra_op_threads={_INTRA_OP_THREADS.value or 'tf_default'} "
          f"inter_op_threads={_INTER_OP_THREADS.value or 'tf_default'} "
          f"load_average={os.getloadavg()[0]:.2f}")
    keras.utils.set_random_seed(_SEED.value)
    model = build_random_mmin(modalities, ModelConfig(kind=ModelKind.MMIN), len(synthetic.IEMOCAP_LABEL_NAMES))
    with tempfile.TemporaryDirectory() as temp_dir:
        start = time.perf_counter()
        loaded = export_and_load(model, modalities, synthetic.IEMOCAP_LABEL_NAMES, os.path.join(temp_dir, "mmin"))
        print(f"serving stage=export_and_load seconds={time.perf_counter() - start:.1f} "
              f"parameters={model.count_params()}")
        timings = measure(loaded.signatures, modalities, mean_lengths, requests, batches,
                          _BATCH_SIZE.value, _WARMUP.value, _SEED.value, _LENGTH_SIGMA.value)
    for timing in timings:
        print(timing.line())
    for name, value in ratios(timings, modalities).items():
        print(f"serving ratio {name}={value:.3f}")
    print(f"serving done load_average={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    app.run(main)
