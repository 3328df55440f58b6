"""Utterances lacking modalities: their training conditions, evaluation, and deterministic drops."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from mmin_tf import modalities as modalities_lib
from mmin_tf.data import format as format_lib
from mmin_tf.data import pipeline
from mmin_tf.data.pipeline import AVAILABILITY, Batching, ConditionMode

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _names(rows, modalities):
    return ["".join(spec.code for spec, on in zip(modalities, row) if on) for row in np.asarray(rows)]


def _table(mode, modalities):
    return pipeline._conditions_tensor(pipeline.training_conditions(mode, modalities))


@pytest.mark.parametrize("present, within, intersected", [
    ((1, 1, 1), ["a", "v", "t", "av", "at", "vt"], ["a", "v", "t", "av", "at", "vt"]),
    ((1, 0, 1), ["a", "t", "at"], ["a", "t", "at"]),
    ((0, 1, 0), ["v"], ["v"]),
])
def test_mmin_conditions_are_those_the_utterance_allows(tiny_modalities, present, within, intersected):
    table = _table(ConditionMode.ALL, tiny_modalities)
    present = tf.constant(np.asarray(present, bool))
    assert _names(pipeline.condition_rows(table, present, True), tiny_modalities) == within
    assert _names(pipeline.condition_rows(table, present, False), tiny_modalities) == intersected


@pytest.mark.parametrize("mode, present, expected", [
    (ConditionMode.FULL, (1, 0, 1), ["at"]),
    (ConditionMode.AUGMENTED, (1, 0, 1), ["at", "a", "t"]),
    (ConditionMode.AUGMENTED, (1, 1, 1), ["avt", "a", "v", "t", "av", "at", "vt"]),
])
def test_classifier_conditions_see_an_absent_modality_as_missing(tiny_modalities, mode, present, expected):
    rows = pipeline.condition_rows(_table(mode, tiny_modalities), tf.constant(np.asarray(present, bool)), False)
    assert _names(rows, tiny_modalities) == expected


def _incomplete_examples(tiny_dataset, absent):
    """The tiny dataset's examples with `absent` (utterance index -> modality names) removed."""
    data_dir, info = tiny_dataset
    examples = list(pipeline.read_split(data_dir, info).as_numpy_iterator())
    for index, names in absent.items():
        for name in names:
            spec = {s.name: s for s in info.modalities}[name]
            examples[index][name] = np.zeros((0, spec.feature_dim), np.float32)
            examples[index][spec.length_key] = np.int32(0)
    return info, tf.data.Dataset.from_generator(
        lambda: iter(examples), output_signature={
            key: tf.TensorSpec(np.shape(value)[:0] if np.ndim(value) == 0 else (None, np.shape(value)[1]),
                               tf.as_dtype(np.asarray(value).dtype))
            for key, value in examples[0].items()}).cache(), examples


@pytest.mark.parametrize("mode, sample_one", [(ConditionMode.RANDOM, True), (ConditionMode.ALL, False)])
def test_an_incomplete_utterance_trains_only_under_allowed_conditions(tiny_dataset, mode, sample_one):
    absent = {0: ["visual"], 1: ["visual", "text"], 2: ["acoustic"]}
    info, examples, rows = _incomplete_examples(tiny_dataset, absent)
    modalities = info.modalities
    conditions = pipeline.training_conditions(mode, modalities)
    dataset = pipeline.make_training_dataset(examples, modalities, conditions, Batching(7), sample_one_condition=sample_one,
                                             seed=3, conditions_within_presence=True)
    seen = {}
    for epoch in range(4 if sample_one else 1):
        for inputs, _ in dataset:
            present = pipeline.presence(inputs, modalities).numpy()
            available = inputs[AVAILABILITY].numpy()
            # Nothing the utterance lacks is ever available to the student.
            assert not np.any(available & ~present)
            for row_present, row_available in zip(present, available):
                key = tuple(row_present)
                seen.setdefault(key, set()).add("".join(s.code for s, on in zip(modalities, row_available) if on))
    assert seen[(True, False, True)] <= {"a", "t", "at"}
    assert seen[(True, False, False)] == {"a"}
    assert seen[(False, True, True)] <= {"v", "t", "vt"}
    if not sample_one:
        assert seen[(True, False, True)] == {"a", "t", "at"}
    expected = len(rows) if sample_one else (len(rows) - 3) * 6 + 3 + 1 + 3
    counted = pipeline.count_training_elements(
        examples, modalities, conditions, sample_one_condition=sample_one, conditions_within_presence=True)
    assert counted == expected == sum(int(tf.shape(batch[1])[0]) for batch in dataset)


def test_complete_data_give_the_same_batches_as_before_absent_modalities_existed(tiny_dataset):
    data_dir, info = tiny_dataset
    examples = pipeline.read_split(data_dir, info).cache()
    conditions = pipeline.training_conditions(ConditionMode.RANDOM, info.modalities)
    table = pipeline._conditions_tensor(conditions)
    batching = Batching(8)
    ours = pipeline.make_training_dataset(examples, info.modalities, conditions, batching, sample_one_condition=True,
                                          seed=5, conditions_within_presence=True)
    # The draw on complete data is `table[draw % count]`, as it was before the rule existed.
    shuffled = examples.map(lambda e: (pipeline._model_inputs(e, info.modalities), e[format_lib.LABEL]))
    shuffled = shuffled.shuffle(4096, seed=5, reshuffle_each_iteration=True)
    draws = tf.data.Dataset.random(seed=6, rerandomize_each_iteration=True)
    plain = tf.data.Dataset.zip(shuffled, draws).map(
        lambda element, draw: ({**element[0], AVAILABILITY: tf.gather(table, draw % len(conditions))}, element[1]))
    plain = pipeline._batch(plain, batching, info.modalities, shuffle_seed=7)
    for (a, la), (b, lb) in zip(ours, plain):
        np.testing.assert_array_equal(a[AVAILABILITY], b[AVAILABILITY])
        np.testing.assert_array_equal(la, lb)


def test_evaluation_leaves_out_utterances_without_the_condition_s_modalities(tiny_dataset):
    info, examples, rows = _incomplete_examples(tiny_dataset, {0: ["visual"], 1: ["visual", "text"]})
    modalities = info.modalities
    visual_only = modalities_lib.parse_condition("v", modalities)
    ids = [u.decode() for batch in pipeline.make_evaluation_dataset(examples, modalities, visual_only, Batching(8))
           for u in batch[2].numpy()]
    assert rows[0][format_lib.UTTERANCE_ID].decode() not in ids and len(ids) == len(rows) - 2
    vt = modalities_lib.parse_condition("vt", modalities)
    scored = {u.decode(): (int(v), int(t)) for batch in pipeline.make_evaluation_dataset(examples, modalities, vt, Batching(8))
              for u, v, t in zip(batch[2].numpy(), batch[0]["visual_length"].numpy(), batch[0]["text_length"].numpy())}
    first, second = (rows[i][format_lib.UTTERANCE_ID].decode() for i in (0, 1))
    assert scored[first][0] == 0 and scored[first][1] > 0  # scored with the text it has
    assert second not in scored


def _masks(data_dir, info, rates, seed, order=None):
    examples = pipeline.read_split(data_dir, info)
    if order is not None:
        examples = examples.shuffle(64, seed=order)
    dropped = pipeline.drop_modalities(examples, info.modalities, rates, seed)
    return {e[format_lib.UTTERANCE_ID].decode(): tuple(int(e[s.length_key] > 0) for s in info.modalities)
            for e in dropped.as_numpy_iterator()}


def test_drops_depend_only_on_the_seed_and_the_utterance(tiny_dataset):
    data_dir, info = tiny_dataset
    rates = {"acoustic": 0.5, "visual": 0.5, "text": 0.5}
    masks = _masks(data_dir, info, rates, seed=1)
    assert masks == _masks(data_dir, info, rates, seed=1, order=3)  # another order, the same masks
    assert masks != _masks(data_dir, info, rates, seed=2)
    assert all(any(mask) for mask in masks.values())  # at least one kept
    assert 0 < sum(sum(mask) for mask in masks.values()) < 3 * len(masks)
    assert all(mask == (1, 1, 1) for mask in _masks(data_dir, info, {"visual": 0.0}, seed=1).values())
    only_visual = _masks(data_dir, info, {"visual": 0.5}, seed=1)
    assert all(mask[0] == mask[2] == 1 for mask in only_visual.values())
    # The same masks in another process (the hash is FarmHash, not Python's per-process hash).
    code = ("import json, sys; from mmin_tf.data import format as f; from tests.data.test_absent_modalities import _masks; "
            f"print(json.dumps(_masks({data_dir!r}, f.load_info({data_dir!r}), {rates!r}, 1)))")
    env = dict(os.environ, PYTHONHASHSEED="123", TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join(filter(None, [REPO_ROOT, os.environ.get("PYTHONPATH")])))
    other = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert other.returncode == 0, other.stderr[-2000:]
    import json

    assert {key: tuple(value) for key, value in json.loads(other.stdout.strip().splitlines()[-1]).items()} == masks


def test_drop_rates_are_checked(tiny_dataset):
    data_dir, info = tiny_dataset
    examples = pipeline.read_split(data_dir, info)
    with pytest.raises(ValueError, match=r"unknown modalities \['smell'\]"):
        pipeline.drop_modalities(examples, info.modalities, {"smell": 0.1}, 0)
    with pytest.raises(ValueError, match=r"must be in \[0, 1\)"):
        pipeline.drop_modalities(examples, info.modalities, {"text": 1.0}, 0)
