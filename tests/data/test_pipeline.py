"""Tests for the tf.data input pipelines (`mmin_tf.data.pipeline`) on the `tiny_dataset` fixture."""

import collections
import hashlib
import os
import re
import shutil
import time

import numpy as np
import pytest
import tensorflow as tf

from mmin_tf import modalities as modalities_lib
from mmin_tf.data import format as format_lib
from mmin_tf.data import pipeline
from mmin_tf.data.pipeline import AVAILABILITY, Batching, ConditionMode

FOLD = "1"


def _digest(frames):
    return hashlib.sha1(np.ascontiguousarray(frames).tobytes()).hexdigest()


@pytest.fixture(scope="module")
def originals(tiny_dataset):
    """utterance id -> parsed numpy example, for every utterance of the dataset."""
    data_dir, info = tiny_dataset
    examples = {}
    for example in pipeline.read_split(data_dir, info).as_numpy_iterator():
        examples[example["utterance_id"].decode()] = example
    assert len(examples) == info.num_utterances
    return examples


@pytest.fixture(scope="module")
def id_of(originals):
    """Digest of an utterance's valid acoustic frames -> its id (training batches carry no id)."""
    ids = {_digest(example["acoustic"]): name for name, example in originals.items()}
    assert len(ids) == len(originals)
    return ids


@pytest.fixture(scope="module")
def folds(tiny_dataset):
    return format_lib.load_folds(tiny_dataset[0])


def _check_unpadded(inputs, row, original, modalities, masked=()):
    """Checks row `row` of a padded batch against the original utterance, bitwise.

    Valid frames are the original's (or all zero and length 0 for `masked` modalities); padding
    is zero; nothing is truncated.
    """
    for spec in modalities:
        features = inputs[spec.name][row]
        length = int(inputs[spec.length_key][row])
        assert features.shape[1] == spec.feature_dim
        if spec.name in masked:
            assert length == 0
            assert not np.any(features), spec.name
        else:
            assert length == int(original[spec.length_key])
            assert features.shape[0] >= length, "truncated"
            assert features[:length].tobytes() == original[spec.name].tobytes(), spec.name
            assert not np.any(features[length:]), spec.name


# Reading.


@pytest.mark.parametrize("fold", ["1", "10"])
def test_read_fold_split_returns_exactly_the_folds_ids(tiny_dataset, folds, fold):
    data_dir, info = tiny_dataset
    for split in format_lib.SPLITS:
        dataset = pipeline.read_fold_split(data_dir, info, fold, split)
        ids = [example["utterance_id"].decode() for example in dataset.as_numpy_iterator()]

        assert sorted(ids) == sorted(folds[fold][split])
        assert len(ids) == len(set(ids))
    assert dataset.element_spec["visual"].shape.as_list() == [None, 4]
    assert dataset.element_spec["label"].dtype == tf.int32


def test_read_fold_split_errors(tiny_dataset, tmp_path):
    data_dir, info = tiny_dataset
    available = str([str(i) for i in range(1, 11)])  # numeric order: '2' before '10'
    with pytest.raises(ValueError, match=re.escape(f"Fold '11' is not defined in {data_dir!r}; "
                                                   f"available folds: {available}")):
        pipeline.read_fold_split(data_dir, info, "11", "train")
    with pytest.raises(ValueError, match=r"`split` must be one of .*Received: 'dev'"):
        pipeline.read_fold_split(data_dir, info, FOLD, "dev")

    copy = str(tmp_path / "copy")
    shutil.copytree(data_dir, copy)
    os.remove(os.path.join(copy, info.shards[2]))
    with pytest.raises(FileNotFoundError, match=re.escape(info.shards[2])):
        pipeline.read_fold_split(copy, info, FOLD, "train")


# Normalization statistics.


def test_normalization_statistics_are_numpy_mean_std_of_valid_frames(
    tiny_dataset, tiny_modalities, folds, originals
):
    data_dir, info = tiny_dataset
    train = pipeline.read_fold_split(data_dir, info, FOLD, "train")
    # The same examples padded to a common length: padding must not enter the statistics.
    padded = train.padded_batch(64).unbatch()
    assert padded.element_spec["acoustic"].shape.as_list() == [None, 3]

    names = ["acoustic", "text"]
    statistics = pipeline.compute_normalization_statistics(train, tiny_modalities, names)
    from_padded = pipeline.compute_normalization_statistics(padded, tiny_modalities, names)

    assert sorted(statistics.mean) == sorted(statistics.std) == names
    for name in names:
        frames = np.concatenate(
            [originals[u][name] for u in folds[FOLD]["train"]]
        ).astype(np.float64)
        assert statistics.mean[name].dtype == statistics.std[name].dtype == np.float32
        np.testing.assert_allclose(statistics.mean[name], frames.mean(axis=0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(statistics.std[name], frames.std(axis=0), rtol=1e-5)
        np.testing.assert_allclose(from_padded.mean[name], statistics.mean[name], rtol=1e-6)
        np.testing.assert_allclose(from_padded.std[name], statistics.std[name], rtol=1e-6)
    restored = pipeline.NormalizationStatistics.from_json(statistics.to_json())
    np.testing.assert_array_equal(restored.std["text"], statistics.std["text"])


def _hand_made(acoustic_frames, lengths):
    """Single padded examples with given acoustic frames `(n, time, 3)` and lengths."""
    acoustic = tf.constant(acoustic_frames, tf.float32)
    return tf.data.Dataset.from_tensor_slices({
        "acoustic": acoustic,
        "acoustic_length": tf.constant(lengths, tf.int32),
    })


def test_normalization_statistics_constant_dimension_gets_std_one(tiny_modalities):
    frames = np.zeros((2, 3, 3), np.float32)
    frames[:, :, 0] = 5.0  # constant
    frames[0, :2, 1] = [1.0, 3.0]
    frames[1, :1, 1] = [2.0]
    frames[:, 2, :] = 100.0  # padding beyond every length: must be ignored

    statistics = pipeline.compute_normalization_statistics(
        _hand_made(frames, [2, 1]), tiny_modalities, ["acoustic"]
    )

    np.testing.assert_allclose(statistics.mean["acoustic"], [5.0, 2.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(statistics.std["acoustic"], [1.0, np.sqrt(2 / 3), 1.0], rtol=1e-6)


def test_normalization_statistics_errors(tiny_modalities):
    frames = np.ones((2, 2, 3), np.float32)
    with pytest.raises(ValueError, match=r"unknown modalities \['depth'\]"):
        pipeline.compute_normalization_statistics(
            _hand_made(frames, [2, 2]), tiny_modalities, ["acoustic", "depth"]
        )
    with pytest.raises(ValueError, match="No frames of modality 'acoustic'"):
        pipeline.compute_normalization_statistics(
            _hand_made(frames, [0, 0]), tiny_modalities, ["acoustic"]
        )


# Missing conditions.


def _check_availability(masked, original, condition, modalities):
    for spec, present in zip(modalities, condition.available):
        features = np.asarray(masked[spec.name])
        lengths = np.asarray(masked[spec.length_key])
        assert features.shape == np.asarray(original[spec.name]).shape
        assert masked[spec.name].dtype == tf.float32
        if present:
            assert features.tobytes() == np.asarray(original[spec.name]).tobytes()
            np.testing.assert_array_equal(lengths, original[spec.length_key])
        else:
            assert not np.any(features), (condition.name, spec.name)
            assert not np.any(lengths), (condition.name, spec.name)
    np.testing.assert_array_equal(masked["label"], original["label"])
    np.testing.assert_array_equal(masked["utterance_id"], original["utterance_id"])


def test_apply_availability_every_condition_eager_and_in_map(tiny_dataset, tiny_modalities):
    data_dir, info = tiny_dataset
    examples = pipeline.read_fold_split(data_dir, info, FOLD, "test")
    single = next(iter(examples))
    batch = next(iter(examples.padded_batch(4)))
    assert batch["acoustic"].shape[0] == 4
    single_numpy = {key: np.asarray(value.numpy()) for key, value in single.items()}

    conditions = modalities_lib.evaluation_conditions(tiny_modalities)
    assert len(conditions) == 7
    for condition in conditions:
        available = tf.constant(condition.available)
        # Eager, one example and one batch.
        _check_availability(
            pipeline.apply_availability(single, available, tiny_modalities),
            single, condition, tiny_modalities,
        )
        batch_available = tf.tile(available[None], [4, 1])
        _check_availability(
            pipeline.apply_availability(batch, batch_available, tiny_modalities),
            batch, condition, tiny_modalities,
        )
        # Inside Dataset.map (graph mode), one example and one batch.
        mapped = next(iter(examples.take(1).map(
            lambda example: pipeline.apply_availability(example, available, tiny_modalities)
        )))
        _check_availability(mapped, single, condition, tiny_modalities)
        mapped_batch = next(iter(examples.padded_batch(4).take(1).map(
            lambda example: pipeline.apply_availability(example, batch_available, tiny_modalities)
        )))
        _check_availability(mapped_batch, batch, condition, tiny_modalities)
    # The input dict is not modified.
    for key, value in single.items():
        assert np.asarray(value.numpy()).tobytes() == single_numpy[key].tobytes()


def test_apply_availability_per_row_of_a_batch(tiny_dataset, tiny_modalities):
    data_dir, info = tiny_dataset
    batch = next(iter(pipeline.read_fold_split(data_dir, info, FOLD, "test").padded_batch(4)))
    availability = tf.constant(
        [[True, False, False], [False, True, True], [True, True, True], [False, False, True]]
    )

    masked = pipeline.apply_availability(batch, availability, tiny_modalities)

    for row in range(4):
        condition = modalities_lib.condition(availability[row].numpy(), tiny_modalities)
        _check_availability(
            {key: value[row] for key, value in masked.items()},
            {key: value[row] for key, value in batch.items()},
            condition, tiny_modalities,
        )


def test_training_conditions(tiny_modalities):
    names = lambda conditions: [c.name for c in conditions]  # noqa: E731
    at = modalities_lib.parse_condition("at", tiny_modalities)

    assert names(pipeline.training_conditions(ConditionMode.FULL, tiny_modalities)) == ["avt"]
    for mode in (ConditionMode.RANDOM, ConditionMode.ALL):
        assert pipeline.training_conditions(mode, tiny_modalities) == (
            modalities_lib.missing_conditions(tiny_modalities))
        assert names(pipeline.training_conditions(mode, tiny_modalities)) == [
            "a", "v", "t", "av", "at", "vt"]
    assert names(pipeline.training_conditions(ConditionMode.AUGMENTED, tiny_modalities)) == [
        "avt", "a", "v", "t", "av", "at", "vt"]
    assert pipeline.training_conditions(ConditionMode.MATCHED, tiny_modalities, at) == (at,)
    with pytest.raises(ValueError, match="matched condition is given exactly when mode is MATCHED"):
        pipeline.training_conditions(ConditionMode.MATCHED, tiny_modalities)
    with pytest.raises(ValueError, match=r"mode=ConditionMode.FULL, matched=Condition"):
        pipeline.training_conditions(ConditionMode.FULL, tiny_modalities, at)


# Training datasets.


def _training_dataset(tiny_dataset, modalities, mode, batching, sample_one_condition, seed=0,
                      matched=None):
    data_dir, info = tiny_dataset
    examples = pipeline.read_fold_split(data_dir, info, FOLD, "train").cache()
    conditions = pipeline.training_conditions(mode, modalities, matched)
    return pipeline.make_training_dataset(
        examples, modalities, conditions, batching,
        sample_one_condition=sample_one_condition, seed=seed,
    ), conditions


def _check_training_batch(inputs, labels, id_of, originals, modalities):
    """Checks one training batch row by row; returns [(utterance id, availability tuple)]."""
    assert sorted(inputs) == sorted(
        [AVAILABILITY] + [key for s in modalities for key in (s.name, s.length_key)])
    size = len(labels)
    assert inputs[AVAILABILITY].shape == (size, len(modalities))
    assert inputs[AVAILABILITY].dtype == np.bool_
    assert labels.dtype == np.int32
    drawn = []
    for row in range(size):
        length = inputs["acoustic_length"][row]
        utterance_id = id_of[_digest(inputs["acoustic"][row, :length])]
        original = originals[utterance_id]
        assert labels[row] == original["label"]
        # Training features are unmasked whatever the availability (the teacher needs them).
        _check_unpadded(inputs, row, original, modalities)
        drawn.append((utterance_id, tuple(inputs[AVAILABILITY][row].tolist())))
    return drawn


def _epoch(dataset, id_of, originals, modalities):
    """One pass: [(utterance id, availability tuple)] in order, checking every batch's content."""
    drawn = []
    for inputs, labels in dataset.as_numpy_iterator():
        drawn += _check_training_batch(inputs, labels, id_of, originals, modalities)
    return drawn


@pytest.mark.parametrize(
    "mode, matched", [(ConditionMode.ALL, None), (ConditionMode.AUGMENTED, None),
                      (ConditionMode.FULL, None), (ConditionMode.MATCHED, "vt")],
)
def test_every_utterance_once_per_condition(
    tiny_dataset, tiny_modalities, folds, id_of, originals, mode, matched
):
    matched = modalities_lib.parse_condition(matched, tiny_modalities) if matched else None
    dataset, conditions = _training_dataset(
        tiny_dataset, tiny_modalities, mode, Batching(batch_size=16),
        sample_one_condition=False, matched=matched,
    )

    drawn = _epoch(dataset, id_of, originals, tiny_modalities)

    expected = collections.Counter(
        (utterance_id, condition.available)
        for utterance_id in folds[FOLD]["train"]
        for condition in conditions
    )
    assert collections.Counter(drawn) == expected
    assert len(drawn) == 32 * len(conditions)


def test_one_random_condition_per_utterance_per_epoch(
    tiny_dataset, tiny_modalities, folds, id_of, originals
):
    batching = Batching(batch_size=8)
    dataset, conditions = _training_dataset(
        tiny_dataset, tiny_modalities, ConditionMode.RANDOM, batching, sample_one_condition=True,
        seed=5,
    )
    twin, _ = _training_dataset(
        tiny_dataset, tiny_modalities, ConditionMode.RANDOM, batching, sample_one_condition=True,
        seed=5,
    )
    other_seed, _ = _training_dataset(
        tiny_dataset, tiny_modalities, ConditionMode.RANDOM, batching, sample_one_condition=True,
        seed=6,
    )
    missing = {condition.available for condition in modalities_lib.missing_conditions(
        tiny_modalities)}

    epochs = [_epoch(dataset, id_of, originals, tiny_modalities) for _ in range(2)]
    twin_epochs = [_epoch(twin, id_of, originals, tiny_modalities) for _ in range(2)]

    for drawn in epochs:
        assert sorted(utterance_id for utterance_id, _ in drawn) == sorted(folds[FOLD]["train"])
        assert {available for _, available in drawn} <= missing
        assert len({available for _, available in drawn}) >= 3
    first, second = (dict(drawn) for drawn in epochs)
    assert first != second  # new draws each epoch (P(equal) = 6**-32)
    assert [u for u, _ in epochs[0]] != [u for u, _ in epochs[1]]  # reshuffled
    assert twin_epochs == epochs  # same seed, same batches, epoch after epoch
    assert dict(_epoch(other_seed, id_of, originals, tiny_modalities)) != first


def _bucket(length, edges):
    """Index of the smallest edge >= length (len(edges) if beyond the last)."""
    return int(np.searchsorted(edges, length, side="left"))


def test_length_boundaries(tiny_dataset):
    _, info = tiny_dataset
    boundaries = pipeline.length_boundaries(info, {"text": 5})

    assert sorted(boundaries) == ["acoustic", "text", "visual"]
    for name, values in boundaries.items():
        assert list(values) == sorted(set(values))
        assert all(value % 8 == 0 for value in values)
        assert values[-1] >= info.length_statistics[name].maximum
    assert len(boundaries["acoustic"]) >= 3  # the tiny dataset spreads over several buckets
    exact = pipeline.length_boundaries(info, {}, multiple=1)
    stats = info.length_statistics["visual"]
    assert exact["visual"] == tuple(sorted(
        {stats.quantiles[q] for q in ("0.5", "0.75", "0.9", "0.99")} | {stats.maximum}))
    assert pipeline.length_boundaries(info, {"text": 40})["text"] == (40,)


@pytest.mark.parametrize("pad_to_boundaries", [True, False])
@pytest.mark.parametrize("derived", [True, False])
def test_length_grouped_batches_are_full_sorted_padded_as_configured_and_truncate_nothing(
    tiny_dataset, tiny_modalities, id_of, originals, derived, pad_to_boundaries
):
    _, info = tiny_dataset
    if derived:
        boundaries = pipeline.length_boundaries(info, {"text": 5})
    else:  # Short boundaries: longer sequences keep their own length; text pads to batch max.
        boundaries = {"acoustic": (16, 24), "visual": (8,)}
    batching = Batching(
        batch_size=8, boundaries=boundaries if pad_to_boundaries else {}, bucket_modality="acoustic",
        window_batches=3,
    )
    dataset, _ = _training_dataset(
        tiny_dataset, tiny_modalities, ConditionMode.ALL, batching, sample_one_condition=False
    )

    count, shorter, sizes = 0, False, []
    for inputs, labels in dataset.as_numpy_iterator():
        count += len(labels)
        sizes.append(len(labels))
        lengths = inputs["acoustic_length"]
        assert list(lengths) == sorted(lengths)  # each batch: a slice of a window sorted by length
        for spec in tiny_modalities:
            padded = inputs[spec.name].shape[1]
            longest = inputs[spec.length_key].max()
            assert longest <= padded
            edges = boundaries.get(spec.name, ()) if pad_to_boundaries else ()
            if _bucket(longest, edges) < len(edges):
                assert padded == edges[_bucket(longest, edges)], (spec.name, padded, longest)
            else:
                assert padded == longest, (spec.name, padded, longest)
        # Row by row: valid frames are the original's (nothing truncated), padding is zero.
        _check_training_batch(inputs, labels, id_of, originals, tiny_modalities)
        shorter |= any(inputs[spec.name].shape[1] < boundaries[spec.name][-1]
                       for spec in tiny_modalities if spec.name in boundaries)
    assert count == 32 * 6
    assert sizes == [8] * 24  # 192 examples: every batch full, none left over per length group
    if not pad_to_boundaries:  # some batch pads below the last boundary (the check above is not vacuous)
        assert shorter


def test_length_grouped_windows_are_sorted_and_shuffled_by_batch(tiny_dataset, tiny_modalities):
    data_dir, info = tiny_dataset
    examples = pipeline.read_fold_split(data_dir, info, FOLD, "train").cache()  # 32 utterances
    batching = Batching(batch_size=4, bucket_modality="acoustic", window_batches=4)
    full = modalities_lib.full_condition(tiny_modalities)
    # Evaluation keeps the windows' order: within each window of 16, batches run short to long.
    evaluation = [inputs["acoustic_length"] for inputs, _, _ in
                  pipeline.make_evaluation_dataset(examples, tiny_modalities, full, batching).as_numpy_iterator()]
    assert [len(lengths) for lengths in evaluation] == [4] * 8
    for window in (evaluation[:4], evaluation[4:]):
        joined = np.concatenate(window)
        assert list(joined) == sorted(joined)
    assert np.concatenate(evaluation[:4]).max() > np.concatenate(evaluation[4:]).min()  # windows are not one sort

    # Training shuffles the batches (seeded), so the step does not see lengths in order. One
    # window holds the whole epoch here: unshuffled, its batches would run short to long.
    one_window = Batching(batch_size=4, bucket_modality="acoustic", window_batches=8)

    def epoch(seed):
        dataset = pipeline.make_training_dataset(
            examples, tiny_modalities, [full], one_window, sample_one_condition=True, seed=seed)
        return [tuple(inputs["acoustic_length"]) for inputs, _ in dataset.as_numpy_iterator()]

    first = epoch(0)
    assert first == epoch(0)
    assert [len(lengths) for lengths in first] == [4] * 8
    maxima = [max(lengths) for lengths in first]
    assert maxima != sorted(maxima)  # not short to long, as the window comes out
    assert epoch(1) != first


@pytest.mark.parametrize("grouped", [False, True])
@pytest.mark.parametrize("mode, sample_one_condition", [(ConditionMode.RANDOM, True), (ConditionMode.ALL, False)])
def test_repeated_epochs_are_the_epochs_fresh_iterations_give(
    tiny_dataset, tiny_modalities, grouped, mode, sample_one_condition
):
    # 5 does not divide 32 (nor 32 x 6): every epoch ends with a short batch.
    batching = Batching(batch_size=5, bucket_modality="acoustic" if grouped else None, window_batches=2)
    data_dir, info = tiny_dataset
    examples = pipeline.read_fold_split(data_dir, info, FOLD, "train").cache()
    conditions = pipeline.training_conditions(mode, tiny_modalities)

    def one_epoch():
        return pipeline.make_training_dataset(
            examples, tiny_modalities, conditions, batching, sample_one_condition=sample_one_condition, seed=3)

    def signature(batch):
        inputs, labels = batch
        return (tuple(inputs["acoustic_length"]), tuple(map(tuple, inputs[AVAILABILITY])), tuple(labels))

    steps = pipeline.training_steps_per_epoch(32, len(conditions), batching, sample_one_condition=sample_one_condition)
    for build_first in (False, True):  # training takes one batch to build the model, then repeats
        fresh, continued = one_epoch(), one_epoch()
        if build_first:
            next(iter(fresh))
            next(iter(continued))
        epochs = [[signature(batch) for batch in fresh.as_numpy_iterator()] for _ in range(3)]
        assert [len(epoch) for epoch in epochs] == [steps] * 3
        assert epochs[0] != epochs[1]  # reshuffled (and redrawn) every epoch
        repeated = pipeline.repeat_epochs(continued, batching).as_numpy_iterator()
        assert [[signature(next(repeated)) for _ in range(steps)] for _ in range(3)] == epochs
        # A resumed run skips the batches it trained: here an epoch and one batch.
        resumed = one_epoch()
        if build_first:
            next(iter(resumed))
        skipped = pipeline.repeat_epochs(resumed, batching, trained_batches=steps + 1).as_numpy_iterator()
        assert [signature(next(skipped)) for _ in range(2 * steps - 1)] == epochs[1][1:] + epochs[2]


def test_repeated_epochs_refuse_a_negative_skip():
    with pytest.raises(ValueError, match="trained_batches"):
        pipeline.repeat_epochs(tf.data.Dataset.range(3), Batching(2), trained_batches=-1)


def test_repeated_epochs_prepare_a_window_of_batches_across_epoch_ends():
    """The step should not wait for the next sorted window: a window's worth of batches is
    prepared ahead, here across the end of a 2-batch epoch (AUTOTUNE would hold only one)."""
    produced = []

    def batches():
        for index in range(2):
            produced.append(index)
            yield index

    one_epoch = tf.data.Dataset.from_generator(batches, output_signature=tf.TensorSpec([], tf.int64))
    repeated = iter(pipeline.repeat_epochs(one_epoch, Batching(batch_size=1, window_batches=5)))

    assert [int(next(repeated)) for _ in range(1)] == [0]
    deadline = time.monotonic() + 20
    while len(produced) < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(produced) == 6  # 1 consumed + 5 ahead, reaching into the third epoch
    assert [int(next(repeated)) for _ in range(5)] == [1, 0, 1, 0, 1]


def test_steps_per_epoch_needs_examples_and_conditions():
    assert pipeline.training_steps_per_epoch(32, 6, Batching(5), sample_one_condition=False) == 39
    assert pipeline.training_steps_per_epoch(32, 6, Batching(5), sample_one_condition=True) == 7
    with pytest.raises(ValueError, match="0 examples"):
        pipeline.training_steps_per_epoch(0, 6, Batching(5), sample_one_condition=True)


# Evaluation datasets.


@pytest.mark.parametrize("pad_to_boundaries", [True, False])
def test_evaluation_dataset_applies_condition_to_every_held_out_utterance_once(
    tiny_dataset, tiny_modalities, folds, originals, pad_to_boundaries
):
    data_dir, info = tiny_dataset
    examples = pipeline.read_fold_split(data_dir, info, FOLD, "validation").concatenate(
        pipeline.read_fold_split(data_dir, info, FOLD, "test")).cache()
    expected = sorted(folds[FOLD]["validation"] + folds[FOLD]["test"])
    boundaries = pipeline.length_boundaries(info, {"text": 5})
    batching = Batching(
        batch_size=3, boundaries=boundaries if pad_to_boundaries else {}, bucket_modality="acoustic",
    )

    for condition in modalities_lib.evaluation_conditions(tiny_modalities):
        masked = [s.name for s, flag in zip(tiny_modalities, condition.available) if not flag]
        dataset = pipeline.make_evaluation_dataset(examples, tiny_modalities, condition, batching)
        seen = []
        for inputs, labels, utterance_ids in dataset.as_numpy_iterator():
            assert sorted(inputs) == sorted(
                key for spec in tiny_modalities for key in (spec.name, spec.length_key))
            for name in masked:  # zero frames, padded to the shortest boundary only, or not at all
                expected_length = boundaries[name][0] if pad_to_boundaries else 0
                assert inputs[name].shape[1] == expected_length, (condition.name, name)
            for row, utterance_id in enumerate(utterance_ids):
                original = originals[utterance_id.decode()]
                assert labels[row] == original["label"]
                _check_unpadded(inputs, row, original, tiny_modalities, masked=masked)
                seen.append(utterance_id.decode())
        assert sorted(seen) == expected, condition.name


# Batching.


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_size": 0}, r"`batch_size` must be >= 1. Received: 0"),
        ({"batch_size": 2, "boundaries": {"acoustic": ()}},
         r"Boundaries of 'acoustic' must be increasing positive ints. Received: \(\)"),
        ({"batch_size": 2, "boundaries": {"acoustic": (16, 8)}}, r"Received: \(16, 8\)"),
        ({"batch_size": 2, "boundaries": {"visual": (8, 8)}}, r"'visual'.*Received: \(8, 8\)"),
        ({"batch_size": 2, "boundaries": {"text": (0, 8)}}, r"'text'.*Received: \(0, 8\)"),
        ({"batch_size": 2, "bucket_modality": "acoustic", "window_batches": 0},
         r"`window_batches` must be >= 1. Received: 0"),
    ],
)
def test_batching_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Batching(**kwargs)


def test_apply_availability_without_zeroing_only_sets_lengths():
    features = tf.random.normal([2, 3, 4])
    inputs = {"acoustic": features, "acoustic_length": tf.constant([3, 2])}
    spec = modalities_lib.ModalitySpec("acoustic", "a", 4, modalities_lib.EncoderKind.LSTM)
    masked = pipeline.apply_availability(inputs, tf.constant([[True], [False]]), (spec,), zero_features=False)
    np.testing.assert_array_equal(masked["acoustic_length"].numpy(), [3, 0])
    np.testing.assert_array_equal(masked["acoustic"].numpy(), features.numpy())


def _examples_with_ids(ids):
    return tf.data.Dataset.from_tensor_slices({format_lib.UTTERANCE_ID: tf.constant(ids)})


def test_attach_per_utterance_adds_each_utterances_value():
    values = np.arange(6, dtype=np.float32).reshape(3, 2)
    attached = pipeline.attach_per_utterance(_examples_with_ids(["c", "a"]), "extra", ["a", "b", "c"], values)

    rows = {row[format_lib.UTTERANCE_ID].numpy().decode(): row["extra"].numpy() for row in attached}

    np.testing.assert_array_equal(rows["a"], values[0])
    np.testing.assert_array_equal(rows["c"], values[2])


def test_attach_per_utterance_rejects_ids_and_values_of_different_lengths():
    with pytest.raises(ValueError, match="2 ids but 3 values"):
        pipeline.attach_per_utterance(_examples_with_ids(["a"]), "extra", ["a", "b"], np.zeros((3, 2), np.float32))


def test_attach_per_utterance_names_an_utterance_without_a_value():
    attached = pipeline.attach_per_utterance(_examples_with_ids(["a", "zz"]), "extra", ["a"], np.zeros((1, 2), np.float32))

    with pytest.raises(tf.errors.InvalidArgumentError, match=r"No precomputed extra for utterance\] \[zz\]"):
        list(attached)
