r"""Throughput of the tf.data training input pipeline at the paper's feature sizes.

Writes a synthetic IEMOCAP-shaped dataset (acoustic 130, visual 342, text 1024; mean lengths
150/50/22 frames) of `--num_utterances` utterances into a temporary directory, then times
`make_training_dataset` on fold 1's training split, as `mmin_tf.training` builds it without XLA:
batch 128, grouped by acoustic length (windows of 8 batches sorted by it), each batch padded to
its longest sequence.

For each condition mode (RANDOM: one missing condition per utterance per epoch; ALL: every
utterance under all six), the first epoch parses the records and fills the in-memory cache; later
epochs read from the cache (the fastest of `--cached_epochs` is printed). Every batch is iterated
and its tensors read back to numpy.

    python benchmarks/input_pipeline.py --quick         # 300 utterances, about a minute
    python benchmarks/input_pipeline.py                  # 1000 utterances

Each measurement prints one line:

    input_pipeline mode=random epoch=cached utterances_per_second=... examples_per_second=...

`utterances` are source utterances (the training split); `examples` are the (utterance,
condition) rows the model consumes (6 per utterance in ALL mode).
"""

import os
import resource
import tempfile
import time

from absl import app, flags

from mmin_tf import modalities as modalities_lib
from mmin_tf.data import pipeline, synthetic
from mmin_tf.data.writer import DatasetWriter

_NUM_UTTERANCES = flags.DEFINE_integer(
    "num_utterances", 1000, "Synthetic corpus size (fold 1 trains on 80 %).", lower_bound=40
)
_QUICK = flags.DEFINE_bool("quick", False, "Use 300 utterances, whatever --num_utterances says.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the synthetic corpus and of the pipeline.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 128, "Examples per batch.", lower_bound=1)
_CACHED_EPOCHS = flags.DEFINE_integer(
    "cached_epochs", 3, "Epochs timed after the first (from the cache); the fastest is printed.",
    lower_bound=1,
)

QUICK_UTTERANCES = 300
FOLD = "1"


def _write_dataset(data_dir: str, num_utterances: int, seed: int):
    config = synthetic.SyntheticConfig(
        num_utterances=num_utterances,
        modalities=modalities_lib.DEFAULT_MODALITIES,
        mean_lengths=tuple(synthetic.DEFAULT_MEAN_LENGTHS.items()),
        seed=seed,
    )
    with DatasetWriter(
        data_dir, name="benchmark", modalities=config.modalities,
        label_names=synthetic.IEMOCAP_LABEL_NAMES,
    ) as writer:
        for utterance in synthetic.generate(config):
            writer.write(utterance)
        return writer.finish()


def _run_epoch(dataset) -> tuple[int, int, float]:
    """Iterates one epoch, reading every tensor back; returns (examples, batches, seconds)."""
    examples = batches = 0
    start = time.perf_counter()
    for inputs, labels in dataset:
        for tensor in inputs.values():
            tensor.numpy()
        examples += len(labels.numpy())
        batches += 1
    return examples, batches, time.perf_counter() - start


def _peak_memory_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def main(argv):
    del argv
    num_utterances = QUICK_UTTERANCES if _QUICK.value else _NUM_UTTERANCES.value
    modalities = modalities_lib.DEFAULT_MODALITIES
    print(f"input_pipeline setup num_utterances={num_utterances} batch_size={_BATCH_SIZE.value} "
          f"cpu_count={os.cpu_count()} dims=" +
          "/".join(str(spec.feature_dim) for spec in modalities))
    cached_rates = {}
    with tempfile.TemporaryDirectory() as temp_dir:
        data_dir = os.path.join(temp_dir, "data")
        start = time.perf_counter()
        info = _write_dataset(data_dir, num_utterances, _SEED.value)
        seconds = time.perf_counter() - start
        print(f"input_pipeline stage=write utterances_per_second={num_utterances / seconds:.1f} "
              f"seconds={seconds:.2f}")
        # As `training.batching_for` for a step without XLA: sorted windows, no boundary padding.
        batching = pipeline.Batching(_BATCH_SIZE.value, bucket_modality="acoustic")
        for mode in (pipeline.ConditionMode.RANDOM, pipeline.ConditionMode.ALL):
            examples = pipeline.read_fold_split(data_dir, info, FOLD, "train").cache()
            dataset = pipeline.make_training_dataset(
                examples, modalities, pipeline.training_conditions(mode, modalities), batching,
                sample_one_condition=mode is pipeline.ConditionMode.RANDOM, seed=_SEED.value,
            )
            num_train = sum(info.fold_counts[FOLD]["train"].values())
            first = _run_epoch(dataset)
            # Best of the cached epochs: the least disturbed by other processes on the machine.
            cached = min(
                (_run_epoch(dataset) for _ in range(_CACHED_EPOCHS.value)), key=lambda t: t[2]
            )
            for epoch, (count, batches, seconds) in (("first", first), ("cached", cached)):
                print(
                    f"input_pipeline mode={mode.value} epoch={epoch} "
                    f"utterances_per_second={num_train / seconds:.1f} "
                    f"examples_per_second={count / seconds:.1f} "
                    f"ms_per_batch={1000 * seconds / batches:.1f} "
                    f"utterances={num_train} examples={count} batches={batches}"
                )
            cached_rates[mode] = cached[0] / cached[2]
    rate = min(cached_rates.values())
    print(
        f"input_pipeline budget: from the cache the pipeline delivers >= {rate:.0f} examples/s, "
        f"one batch of {_BATCH_SIZE.value} every {1000 * _BATCH_SIZE.value / rate:.1f} ms; a "
        f"training step faster than that is input-bound. peak_memory_gib={_peak_memory_gib():.2f}"
    )


if __name__ == "__main__":
    app.run(main)
