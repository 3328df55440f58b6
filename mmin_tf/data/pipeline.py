"""tf.data input pipelines: read a fold's split, generate missing-modality conditions, bucket, pad.

Element structure (model inputs follow the served model's signature):

    inputs = {
        "<modality>":        float32 (batch, time, feature_dim), zero padded,
        "<modality>_length": int32 (batch,), valid frames; 0 = modality missing,
        "availability":      bool (batch, num_modalities), training datasets only,
    }

Training datasets yield `(inputs, label)` with the *unmasked* features and an `availability` mask:
the trainer hides the missing modalities from the student (and shows them to the frozen teacher,
which needs them as imagination targets). Evaluation datasets yield `(inputs, label,
utterance_id)` with the condition already applied: a missing modality's features are all zero and
its length is 0, exactly what a served request with that modality absent looks like.

Absent modalities (an utterance the dataset has without, e.g., a face: 0 frames in its record)
are missing in every condition: a training condition is intersected with what the utterance has
(`conditions_within_presence=False`, the classifiers) or only conditions within what it has are
used (`True`, MMIN, whose imagination targets of the missing modalities must exist); evaluation
conditions are intersected with what each utterance has, and an utterance that has none of a
condition's modalities is not scored under it. `drop_modalities` removes modalities at given
rates, deterministically per utterance (training on incomplete data; the missing-rate protocol).

Normalization is not applied here: `compute_normalization_statistics` computes the per-dimension
mean/std of a fold's training split, and the model applies them in its first layer, so the
exported SavedModel reproduces them.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

from mmin_tf import modalities as modalities_lib
from mmin_tf.data import format as format_lib

AVAILABILITY = "availability"
CONDITION_MASK = "condition_mask"  # grouped conditions: which of an utterance's condition rows exist
TEACHER_EMBEDDING = "teacher_embedding"
AUTOTUNE = tf.data.AUTOTUNE


class ConditionMode(enum.Enum):
    """How training examples are turned into missing-modality conditions."""

    FULL = "full"  # every utterance with every modality (the full-modality baseline)
    RANDOM = "random"  # one missing condition drawn per utterance per epoch (the original code)
    ALL = "all"  # every utterance under every missing condition (the paper's §4.1.1)
    AUGMENTED = "augmented"  # full + every missing condition (the paper's augmented baseline)
    MATCHED = "matched"  # every utterance under one given condition (Table 7 baselines)


def training_conditions(
    mode: ConditionMode,
    modalities: Sequence[modalities_lib.ModalitySpec],
    matched: Optional[modalities_lib.Condition] = None,
) -> tuple[modalities_lib.Condition, ...]:
    """The conditions a training mode draws from (RANDOM) or expands into (the others)."""
    if (mode is ConditionMode.MATCHED) != (matched is not None):
        raise ValueError(
            "A matched condition is given exactly when mode is MATCHED. "
            f"Received: mode={mode}, matched={matched}"
        )
    if mode is ConditionMode.FULL:
        return (modalities_lib.full_condition(modalities),)
    if mode in (ConditionMode.RANDOM, ConditionMode.ALL):
        return modalities_lib.missing_conditions(modalities)
    if mode is ConditionMode.AUGMENTED:
        return (modalities_lib.full_condition(modalities),) + modalities_lib.missing_conditions(
            modalities
        )
    return (matched,)


def read_split(
    data_dir: str,
    info: format_lib.DatasetInfo,
    utterance_ids: Optional[Sequence[str]] = None,
) -> tf.data.Dataset:
    """Reads and parses the records of `utterance_ids` (all when None), in file order.

    Returns:
        A dataset of single parsed examples (see `format.parse_sequence_example`).
    """
    shards = format_lib.shard_paths(data_dir, info)
    missing = [path for path in shards if not tf.io.gfile.exists(path)]
    if missing:
        raise FileNotFoundError(f"Dataset {data_dir!r} lacks shard files {missing}")
    dataset = tf.data.TFRecordDataset(shards)
    if utterance_ids is not None:
        wanted = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(list(utterance_ids), tf.string),
                tf.ones([len(utterance_ids)], tf.int32),
            ),
            default_value=0,
        )
        context = {format_lib.UTTERANCE_ID: tf.io.FixedLenFeature([], tf.string)}
        dataset = dataset.filter(
            lambda record: wanted.lookup(
                tf.io.parse_single_sequence_example(record, context_features=context)[0][
                    format_lib.UTTERANCE_ID
                ]
            )
            > 0
        )
    modalities = info.modalities
    return dataset.map(
        lambda record: format_lib.parse_sequence_example(record, modalities),
        num_parallel_calls=AUTOTUNE,
        deterministic=True,
    )


def read_fold_split(data_dir: str, info: format_lib.DatasetInfo, fold: str, split: str):
    """Reads one split (`train`, `validation`, `test`) of one fold."""
    folds = format_lib.load_folds(data_dir)
    if fold not in folds:
        raise ValueError(
            f"Fold {fold!r} is not defined in {data_dir!r}; available folds: {sorted(folds, key=format_lib.fold_sort_key)}"
        )
    if split not in format_lib.SPLITS:
        raise ValueError(f"`split` must be one of {format_lib.SPLITS}. Received: {split!r}")
    return read_split(data_dir, info, folds[fold][split])


@dataclasses.dataclass(frozen=True)
class NormalizationStatistics:
    """Per-dimension mean and standard deviation of each normalized modality's valid frames."""

    mean: Mapping[str, np.ndarray]
    std: Mapping[str, np.ndarray]

    def to_json(self) -> dict:
        return {
            name: {"mean": self.mean[name].tolist(), "std": self.std[name].tolist()}
            for name in self.mean
        }

    @classmethod
    def from_json(cls, config: dict) -> "NormalizationStatistics":
        return cls(
            mean={name: np.asarray(v["mean"], np.float32) for name, v in config.items()},
            std={name: np.asarray(v["std"], np.float32) for name, v in config.items()},
        )


def compute_normalization_statistics(
    examples: tf.data.Dataset,
    modalities: Sequence[modalities_lib.ModalitySpec],
    names: Sequence[str],
) -> NormalizationStatistics:
    """Mean and std over every valid frame of `examples` (a training split), for `names`.

    Padding never enters the statistics; a dimension with zero variance gets std 1, as the
    original implementation does.
    """
    specs = {spec.name: spec for spec in modalities}
    unknown = sorted(set(names) - set(specs))
    if unknown:
        raise ValueError(f"Cannot normalize unknown modalities {unknown}; known: {sorted(specs)}")
    sums = {name: np.zeros(specs[name].feature_dim, np.float64) for name in names}
    squares = {name: np.zeros(specs[name].feature_dim, np.float64) for name in names}
    counts = {name: 0 for name in names}
    for example in examples.as_numpy_iterator():
        for name in names:
            frames = example[name][: example[specs[name].length_key]].astype(np.float64)
            sums[name] += frames.sum(axis=0)
            squares[name] += np.square(frames).sum(axis=0)
            counts[name] += len(frames)
    mean, std = {}, {}
    for name in names:
        if counts[name] == 0:
            raise ValueError(f"No frames of modality {name!r} to compute statistics from")
        mean[name] = sums[name] / counts[name]
        variance = np.maximum(squares[name] / counts[name] - np.square(mean[name]), 0.0)
        deviation = np.sqrt(variance)
        deviation[deviation < 1e-8] = 1.0
        mean[name] = mean[name].astype(np.float32)
        std[name] = deviation.astype(np.float32)
    return NormalizationStatistics(mean=mean, std=std)


def apply_availability(
    inputs: Mapping[str, tf.Tensor],
    availability: tf.Tensor,
    modalities: Sequence[modalities_lib.ModalitySpec],
    zero_features: bool = True,
) -> dict[str, tf.Tensor]:
    """Marks the modalities that are not available as missing: zero features, length 0.

    The model reads no frame of a modality whose length is 0, so `zero_features=False` (lengths
    only; used on the training hot path) gives the model the same inputs at less cost.

    Works on one example (`availability` `(num_modalities,)`, features `(time, dim)`) and on a
    batch (`(batch, num_modalities)`, `(batch, time, dim)`). Other keys pass through.

    Returns:
        A new dict; present modalities are untouched.
    """
    masked = dict(inputs)
    for index, spec in enumerate(modalities):
        present = availability[..., index]
        if zero_features:
            features = inputs[spec.name]
            masked[spec.name] = tf.where(present[..., None, None], features, tf.zeros_like(features))
        masked[spec.length_key] = inputs[spec.length_key] * tf.cast(present, tf.int32)
    return masked


def _conditions_tensor(conditions: Sequence[modalities_lib.Condition]) -> tf.Tensor:
    return tf.constant([condition.available for condition in conditions], tf.bool)


def presence(example: Mapping[str, tf.Tensor], modalities: Sequence[modalities_lib.ModalitySpec]) -> tf.Tensor:
    """bool `(..., num_modalities)`: which modalities an example (or a batch) has frames of."""
    return tf.stack([example[spec.length_key] > 0 for spec in modalities], axis=-1)


def condition_rows(table: tf.Tensor, present: tf.Tensor, within_presence: bool) -> tf.Tensor:
    """The training conditions bool `(n, num_modalities)` an utterance with `present`
    `(num_modalities,)` gives, from `table` `(num_conditions, num_modalities)`, in table order:
    the conditions within its modalities (`within_presence`) or each one intersected with them,
    without empty or repeated rows. For an utterance with every modality it is `table`.
    """
    if within_presence:
        rows = tf.boolean_mask(table, tf.reduce_all(tf.logical_or(tf.logical_not(table), present[None, :]), axis=1))
    else:
        rows = tf.logical_and(table, present[None, :])
    bits = tf.bitwise.left_shift(1, tf.range(tf.shape(table)[1]))  # (M,)
    codes, _ = tf.unique(tf.reduce_sum(tf.cast(rows, tf.int32) * bits[None, :], axis=1))  # first occurrences
    codes = tf.boolean_mask(codes, codes > 0)
    return tf.bitwise.bitwise_and(codes[:, None], bits[None, :]) > 0


def _uniform(seed: int, utterance_id: tf.Tensor, name: str) -> tf.Tensor:
    """A draw in [0, 1) fixed by `seed`, the utterance and `name` (FarmHash of the three): the
    same in every process, model and run."""
    key = tf.strings.join([str(seed), utterance_id, name], separator="|")
    return tf.cast(tf.strings.to_hash_bucket_fast(key, 2 ** 31 - 1), tf.float32) / (2 ** 31 - 1)


def drop_modalities(
    examples: tf.data.Dataset,
    modalities: Sequence[modalities_lib.ModalitySpec],
    rates: Mapping[str, float],
    seed: int,
) -> tf.data.Dataset:
    """Each example without each of its modalities with probability `rates[name]`, at least one kept.

    The draws depend only on `seed`, the utterance id and the modality (`_uniform`), so every
    model and process drops the same ones. When every modality an example has would go, the one
    with the highest draw stays. A dropped modality becomes absent: 0 frames, length 0.
    """
    modalities = tuple(modalities)
    unknown = sorted(set(rates) - {spec.name for spec in modalities})
    if unknown:
        raise ValueError(f"Missing rates for unknown modalities {unknown}; known: {[s.name for s in modalities]}")
    bad = {name: rate for name, rate in rates.items() if not 0.0 <= rate < 1.0}
    if bad:
        raise ValueError(f"Missing rates must be in [0, 1). Received: {bad}")
    threshold = tf.constant([float(rates.get(spec.name, 0.0)) for spec in modalities])

    def drop(example):
        present = presence(example, modalities)
        draws = tf.stack([_uniform(seed, example[format_lib.UTTERANCE_ID], spec.name) for spec in modalities])
        kept = tf.logical_and(present, draws >= threshold)
        highest = tf.one_hot(tf.argmax(tf.where(present, draws, -1.0)), len(modalities), on_value=True, off_value=False)
        kept = tf.where(tf.reduce_any(kept), kept, highest)
        dropped = dict(example)
        for index, spec in enumerate(modalities):
            keep = kept[index]
            dropped[spec.name] = tf.cond(keep, lambda name=spec.name: example[name],
                                         lambda dim=spec.feature_dim: tf.zeros([0, dim], tf.float32))
            dropped[spec.length_key] = tf.where(keep, example[spec.length_key], 0)
        return dropped

    return examples.map(drop, num_parallel_calls=AUTOTUNE, deterministic=True)


def _model_inputs(example: Mapping[str, tf.Tensor], modalities, extra_keys=()) -> dict[str, tf.Tensor]:
    inputs = {key: example[key] for key in extra_keys}
    for spec in modalities:
        inputs[spec.name] = example[spec.name]
        inputs[spec.length_key] = example[spec.length_key]
    return inputs


def attach_per_utterance(
    examples: tf.data.Dataset, key: str, utterance_ids: Sequence[str], values: np.ndarray
) -> tf.data.Dataset:
    """Adds `values[i]` under `key` to the example whose id is `utterance_ids[i]`.

    Used to carry per-utterance constants computed once (the frozen teacher's embeddings) into
    the training batches. Every example must have a value.
    """
    if len(utterance_ids) != len(values):
        raise ValueError(f"{len(utterance_ids)} ids but {len(values)} values")
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(utterance_ids), tf.string), tf.range(len(utterance_ids), dtype=tf.int64)
        ),
        default_value=-1,
    )
    constants = tf.constant(values)

    def attach(example):
        utterance_id = example[format_lib.UTTERANCE_ID]
        index = table.lookup(utterance_id)
        check = tf.debugging.Assert(index >= 0, [f"No precomputed {key} for utterance", utterance_id])
        with tf.control_dependencies([check]):
            return {**example, key: tf.gather(constants, index)}

    return examples.map(attach, num_parallel_calls=AUTOTUNE, deterministic=True)


@dataclasses.dataclass(frozen=True)
class Batching:
    """How examples are grouped into batches.

    Attributes:
        batch_size: examples per batch.
        bucket_modality: None: batches of `batch_size` examples in input order, each padded to
            its longest sequence. A modality name: examples are grouped by that modality's length
            (the costliest encoder's input): each window of `window_batches * batch_size`
            consecutive examples is sorted by it and cut into `batch_size` batches, so every
            batch is full (but the epoch's last) and holds sequences of similar length.
        window_batches: batches per sorted window (with `bucket_modality`). Larger windows give
            batches of more similar lengths.
        boundaries: modality name -> increasing lengths. A batch pads such a modality to the
            smallest boundary >= its longest sequence, so the model sees a small, fixed set of
            shapes (XLA compiles each once). Modalities without boundaries (all, by default) pad
            to the batch's longest: the fewest padded steps, for a step that is not XLA-compiled.
    """

    batch_size: int
    boundaries: Mapping[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)
    bucket_modality: Optional[str] = None
    window_batches: int = 8

    def __post_init__(self):
        if self.batch_size < 1:
            raise ValueError(f"`batch_size` must be >= 1. Received: {self.batch_size}")
        if self.window_batches < 1:
            raise ValueError(f"`window_batches` must be >= 1. Received: {self.window_batches}")
        for name, values in self.boundaries.items():
            if not values or list(values) != sorted(set(values)) or values[0] < 1:
                raise ValueError(
                    f"Boundaries of {name!r} must be increasing positive ints. Received: {values}"
                )


def length_boundaries(
    info: format_lib.DatasetInfo,
    minimum_lengths: Mapping[str, int],
    multiple: int = 8,
) -> dict[str, tuple[int, ...]]:
    """Padded-length boundaries per modality from the dataset's length quantiles.

    Boundaries are the 50/75/90/99 % quantiles and the maximum, rounded up to `multiple` and to at
    least `minimum_lengths[name]` (the encoder's shortest input), so every sequence fits.
    """
    boundaries = {}
    for spec in info.modalities:
        stats = info.length_statistics[spec.name]
        levels = [stats.quantiles[key] for key in ("0.5", "0.75", "0.9", "0.99")] + [stats.maximum]
        floor = minimum_lengths.get(spec.name, 1)
        values = sorted({max(floor, multiple * math.ceil(level / multiple)) for level in levels})
        boundaries[spec.name] = tuple(values)
    return boundaries


def _pad_to_boundaries(inputs, modalities, boundaries):
    padded = dict(inputs)
    for spec in modalities:
        if spec.name not in boundaries:
            continue
        features = inputs[spec.name]
        edges = tf.constant(boundaries[spec.name], tf.int32)
        length = tf.shape(features)[1]
        # The first boundary >= length; lengths beyond the last one keep their own (nothing is truncated).
        index = tf.searchsorted(edges, [length], side="left")[0]
        target = tf.gather(tf.concat([edges, [length]], 0), index)
        features = tf.pad(features, [[0, 0], [0, target - length], [0, 0]])
        padded[spec.name] = tf.ensure_shape(features, [None, None, spec.feature_dim])
    return padded


def _batch(dataset: tf.data.Dataset, batching: Batching, modalities, shuffle_seed=None) -> tf.data.Dataset:
    """Batches `(inputs, ...)` elements as `batching` says (see `Batching`); with a
    `shuffle_seed`, length-grouped batches come out in a shuffled (seeded) order."""
    if batching.bucket_modality is None:
        dataset = dataset.padded_batch(batching.batch_size)
    else:
        dataset = _sorted_window_batches(dataset, batching, modalities)
        if shuffle_seed is not None:  # a window's batches come out short to long
            dataset = dataset.shuffle(batching.window_batches, seed=shuffle_seed, reshuffle_each_iteration=True)
    if batching.boundaries:
        dataset = dataset.map(
            lambda inputs, *rest: (_pad_to_boundaries(inputs, modalities, batching.boundaries),)
            + tuple(rest),
            num_parallel_calls=AUTOTUNE,
            deterministic=True,
        )
    return dataset


def _sorted_window_batches(dataset: tf.data.Dataset, batching: Batching, modalities) -> tf.data.Dataset:
    """Windows of `window_batches` batches, each sorted by `bucket_modality`'s length and cut
    into batches padded to their longest sequence; batches come out in sorted order."""
    size = batching.batch_size
    length_key = {spec.name: spec for spec in modalities}[batching.bucket_modality].length_key

    def batches_of_window(inputs, *rest):
        # inputs: sequences are ragged `(window, None, feature_dim)`, the rest dense `(window, ...)`.
        order = tf.argsort(inputs[length_key], stable=True)
        starts = tf.range(0, tf.shape(order)[0], size)

        def batch_at(start):
            rows = order[start:start + size]
            picked = {key: tf.gather(value, rows) for key, value in inputs.items()}
            dense = {
                key: value.to_tensor() if isinstance(value, tf.RaggedTensor) else value
                for key, value in picked.items()
            }
            return (dense,) + tuple(tf.gather(value, rows) for value in rest)

        return tf.data.Dataset.from_tensor_slices(starts).map(batch_at)

    return dataset.ragged_batch(size * batching.window_batches).flat_map(batches_of_window)


def make_training_dataset(
    examples: tf.data.Dataset,
    modalities: Sequence[modalities_lib.ModalitySpec],
    conditions: Sequence[modalities_lib.Condition],
    batching: Batching,
    *,
    sample_one_condition: bool,
    seed: int,
    extra_keys: Sequence[str] = (),
    conditions_within_presence: bool = False,
    group_conditions: bool = False,
) -> tf.data.Dataset:
    """Batches of `(inputs with availability, label)` for one epoch; reshuffled every epoch.

    Args:
        examples: parsed training examples (`read_fold_split(..., "train")`).
        conditions: the training conditions (`training_conditions`).
        sample_one_condition: True draws one of an utterance's conditions per epoch; False
            yields every utterance once under each of its conditions.
        seed: shuffling and condition draws; same seed, same batches.
        extra_keys: example keys passed into the inputs as they are (e.g. `teacher_embedding`).
        conditions_within_presence: an utterance that lacks modalities (absent in the data) gets
            the conditions within what it has (True: MMIN) or every condition intersected with
            what it has (False: an absent modality is missing), without empty or repeated ones
            (`condition_rows`). An utterance with every modality gets `conditions` either way.
        group_conditions: with `sample_one_condition=False`, yield each utterance once with all
            its conditions instead of one element per utterance-condition: `availability` is bool
            `(batch, len(conditions), num_modalities)`, `condition_mask` bool `(batch,
            len(conditions))` marks the rows that exist (an incomplete utterance has fewer), and a
            batch holds `max(1, batching.batch_size // len(conditions))` utterances, about
            `batch_size` utterance-conditions. The trainer then encodes each utterance once.

    Cache `examples` (`.cache()`) when it is read more than once: parsing is the costly part.
    """
    modalities = tuple(modalities)
    table = _conditions_tensor(conditions)
    if group_conditions:
        if sample_one_condition:
            raise ValueError("`group_conditions` yields every condition of an utterance: it needs sample_one_condition=False")
        return _grouped_training_dataset(examples, modalities, table, batching, seed, extra_keys, conditions_within_presence)

    def rows(inputs):
        return condition_rows(table, presence(inputs, modalities), conditions_within_presence)

    dataset = examples.map(
        lambda example: (_model_inputs(example, modalities, extra_keys), example[format_lib.LABEL]),
        num_parallel_calls=AUTOTUNE,
        deterministic=True,
    )
    if sample_one_condition:
        dataset = dataset.shuffle(4096, seed=seed, reshuffle_each_iteration=True)
        draws = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True)

        def draw_condition(element, draw):
            candidates = rows(element[0])
            picked = tf.gather(candidates, draw % tf.cast(tf.shape(candidates)[0], tf.int64))
            return {**element[0], AVAILABILITY: picked}, element[1]

        dataset = tf.data.Dataset.zip(dataset, draws).map(
            draw_condition, num_parallel_calls=AUTOTUNE, deterministic=True)
    else:
        dataset = dataset.flat_map(
            lambda inputs, label: tf.data.Dataset.from_tensor_slices(rows(inputs)).map(
                lambda available: ({**inputs, AVAILABILITY: available}, label)
            )
        )
        dataset = dataset.shuffle(16384, seed=seed, reshuffle_each_iteration=True)
    return _batch(dataset, batching, modalities, shuffle_seed=seed + 2).prefetch(AUTOTUNE)


def grouped_batching(batching: Batching, num_conditions: int) -> Batching:
    """`batching` for utterances that carry `num_conditions` condition rows each."""
    return dataclasses.replace(batching, batch_size=max(1, batching.batch_size // num_conditions))


def _grouped_training_dataset(examples, modalities, table, batching, seed, extra_keys, within_presence):
    count = int(table.shape[0])

    def with_conditions(example):
        inputs = _model_inputs(example, modalities, extra_keys)
        rows = condition_rows(table, presence(inputs, modalities), within_presence)  # (n, M)
        padding = count - tf.shape(rows)[0]
        inputs[AVAILABILITY] = tf.pad(rows, [[0, padding], [0, 0]])  # (C, M)
        inputs[CONDITION_MASK] = tf.sequence_mask(tf.shape(rows)[0], count)  # (C,)
        return inputs, example[format_lib.LABEL]

    dataset = examples.map(with_conditions, num_parallel_calls=AUTOTUNE, deterministic=True)
    dataset = dataset.shuffle(4096, seed=seed, reshuffle_each_iteration=True)
    return _batch(dataset, grouped_batching(batching, count), modalities, shuffle_seed=seed + 2).prefetch(AUTOTUNE)


def count_training_elements(
    examples: tf.data.Dataset,
    modalities: Sequence[modalities_lib.ModalitySpec],
    conditions: Sequence[modalities_lib.Condition],
    *,
    sample_one_condition: bool,
    conditions_within_presence: bool = False,
) -> int:
    """Elements (utterance-conditions) in one epoch of `make_training_dataset` with these arguments:
    utterances, or the sum of each utterance's conditions."""
    if sample_one_condition:
        return int(examples.reduce(0, lambda count, _: count + 1))
    table = _conditions_tensor(conditions)
    modalities = tuple(modalities)
    return int(examples.reduce(0, lambda count, example: count + tf.shape(
        condition_rows(table, presence(example, modalities), conditions_within_presence))[0]))


def repeat_epochs(one_epoch: tf.data.Dataset, batching: Batching, trained_batches: int = 0) -> tf.data.Dataset:
    """`one_epoch` (a `make_training_dataset` with `batching`) epoch after epoch without end: the
    same batches as fresh iterations of it would give, continuing after those already iterated.

    One iterator then serves a whole `fit`, and a sorted window's worth of batches
    (`batching.window_batches`) is prepared ahead of the step, across epoch ends. A window is
    complete only once all its examples are read, so the next window is then assembled while the
    current one's batches train, instead of while the step waits (`AUTOTUNE` starts with one
    batch ahead). Pass `steps_per_epoch=training_steps_per_epoch(...)` to `fit`. Take any batch for other uses
    (building a model) from `one_epoch`, not from the repeated dataset: its read-ahead could
    start the next epoch and so change the epochs `fit` sees.

    `trained_batches`: batches already trained (a run restored from a backup): that many are
    skipped, so training continues with the batches the uninterrupted run saw next. Skipping
    assembles them without training on them (a pipeline's worth of work per skipped epoch).
    """
    if trained_batches < 0:
        raise ValueError(f"`trained_batches` must be >= 0. Received: {trained_batches}")
    return one_epoch.repeat().skip(trained_batches).prefetch(batching.window_batches)


def training_steps_per_epoch(
    num_examples: int, num_conditions: int, batching: Batching, *, sample_one_condition: bool
) -> int:
    """Batches in one epoch of `make_training_dataset` (every batch is full but the epoch's last).

    `num_examples`: training utterances; `num_conditions`: `len(conditions)` as passed there.
    """
    if num_examples < 1 or num_conditions < 1:
        raise ValueError(f"An epoch needs examples and conditions. Received: {num_examples} examples, "
                         f"{num_conditions} conditions")
    elements = num_examples if sample_one_condition else num_examples * num_conditions
    return math.ceil(elements / batching.batch_size)


def make_evaluation_dataset(
    examples: tf.data.Dataset,
    modalities: Sequence[modalities_lib.ModalitySpec],
    condition: modalities_lib.Condition,
    batching: Batching,
) -> tf.data.Dataset:
    """Batches of `(inputs, label, utterance_id)` with `condition` applied, in a fixed order.

    Utterances lacking some of the condition's modalities (absent in the data) are scored with
    the ones they have; those with none of them are left out.
    """
    modalities = tuple(modalities)

    def apply_condition(example):
        # A missing modality becomes zero frames, as in a served request without it: batches
        # then pad it to the shortest boundary instead of carrying zeros of its old length.
        inputs = _model_inputs(example, modalities)
        for spec, available in zip(modalities, condition.available):
            if not available:
                inputs[spec.name] = tf.zeros([0, spec.feature_dim], tf.float32)
                inputs[spec.length_key] = tf.zeros([], tf.int32)
        return inputs, example[format_lib.LABEL], example[format_lib.UTTERANCE_ID]

    wanted = tf.constant(condition.available)
    # An utterance without any of the condition's modalities (absent in the data) is not scored under it.
    examples = examples.filter(lambda example: tf.reduce_any(tf.logical_and(presence(example, modalities), wanted)))
    dataset = examples.map(
        apply_condition,
        num_parallel_calls=AUTOTUNE,
        deterministic=True,
    )
    return _batch(dataset, batching, modalities).prefetch(AUTOTUNE)
