"""Tests for speaker-independent cross-validation folds (`mmin_tf.data.folds`)."""

import pytest

from mmin_tf.data.folds import speaker_independent_folds, validate_folds
from mmin_tf.data.format import DataError

GROUPS = [f"Ses{g:02d}" for g in range(1, 6)]


def _iemocap_like(per_speaker=3):
    """(utterance_id, speaker, group) for 5 groups x 2 speakers, interleaved as in a corpus."""
    triples = []
    for index in range(per_speaker):
        for group in GROUPS:
            for sex in "FM":
                speaker = group + sex
                triples.append((f"{speaker}_{index}", speaker, group))
    return triples


def test_five_groups_of_two_speakers_give_ten_folds():
    triples = _iemocap_like()
    speaker_of = {utterance_id: speaker for utterance_id, speaker, _ in triples}
    group_of = {utterance_id: group for utterance_id, _, group in triples}

    folds = speaker_independent_folds(triples)

    assert list(folds) == [str(i) for i in range(1, 11)]
    validate_folds(folds, set(speaker_of))
    for number, (name, splits) in enumerate(folds.items()):
        held_out = GROUPS[number // 2]
        # Speakers sort F before M: odd folds test on F, even folds on M.
        test_speaker = held_out + "FM"[number % 2]
        other_speaker = held_out + "MF"[number % 2]
        assert {speaker_of[u] for u in splits["test"]} == {test_speaker}, name
        assert {speaker_of[u] for u in splits["validation"]} == {other_speaker}, name
        assert len(splits["test"]) == len(splits["validation"]) == 3
        assert {group_of[u] for u in splits["train"]} == set(GROUPS) - {held_out}
        assert len(splits["train"]) == 4 * 2 * 3
        # Every utterance is in exactly one split, and no speaker is in two.
        assert sorted(splits["train"] + splits["validation"] + splits["test"]) == sorted(speaker_of)
        speakers = {split: {speaker_of[u] for u in ids} for split, ids in splits.items()}
        assert not speakers["train"] & speakers["validation"]
        assert not speakers["train"] & speakers["test"]
        assert not speakers["validation"] & speakers["test"]


def test_paired_folds_swap_validation_and_test():
    folds = speaker_independent_folds(_iemocap_like())

    for k in range(1, 6):
        first, second = folds[str(2 * k - 1)], folds[str(2 * k)]
        assert first["validation"] == second["test"]
        assert first["test"] == second["validation"]
        assert first["train"] == second["train"]


def test_ids_keep_input_order_within_a_speaker():
    folds = speaker_independent_folds(_iemocap_like())
    assert folds["1"]["test"] == ["Ses01F_0", "Ses01F_1", "Ses01F_2"]
    assert folds["1"]["train"][:3] == ["Ses02F_0", "Ses02F_1", "Ses02F_2"]


def test_three_speakers_in_a_group_validate_on_the_other_two():
    triples = [("g1a", "A", "g1"), ("g1b", "B", "g1"), ("g1c", "C", "g1"),
               ("g2d", "D", "g2"), ("g2e", "E", "g2")]

    folds = speaker_independent_folds(triples)

    assert len(folds) == 5
    assert folds["1"] == {"train": ["g2d", "g2e"], "validation": ["g1b", "g1c"], "test": ["g1a"]}
    assert folds["5"] == {"train": ["g1a", "g1b", "g1c"], "validation": ["g2d"], "test": ["g2e"]}


def test_one_group_is_an_error():
    with pytest.raises(DataError, match=r"at least two groups.*\['Ses01'\]"):
        speaker_independent_folds([("u1", "Ses01F", "Ses01"), ("u2", "Ses01M", "Ses01")])


def test_one_speaker_group_is_an_error():
    triples = [("u1", "A", "g1"), ("u2", "B", "g1"), ("u3", "C", "g2"), ("u4", "C", "g2")]
    with pytest.raises(DataError, match=r"Group 'g2' has a single speaker \('C'\)"):
        speaker_independent_folds(triples)


GOOD = {"1": {"train": ["a", "b"], "validation": ["c"], "test": ["d"]}}
KNOWN = {"a", "b", "c", "d"}


def test_validate_folds_accepts_good_folds():
    validate_folds(GOOD, KNOWN)


@pytest.mark.parametrize(
    "folds, match",
    [
        ({}, "No folds defined"),
        ({"1": {"train": ["a"], "test": ["d"]}},
         r"Fold '1' must have splits .*\['test', 'train'\]"),
        ({"1": {"train": ["a"], "validation": ["c"], "test": ["d"], "extra": ["b"]}},
         r"Fold '1' must have splits"),
        ({"1": {"train": ["a"], "validation": [], "test": ["d"]}},
         "Fold '1' has an empty validation split"),
        ({"x": {"train": ["a", "zz"], "validation": ["c"], "test": ["d"]}},
         "Fold 'x' train split names utterance 'zz', which is not in the dataset"),
        ({"1": {"train": ["a", "c"], "validation": ["c"], "test": ["d"]}},
         "Fold '1': utterance 'c' is in both the train and validation splits"),
        ({"1": {"train": ["a"], "validation": ["c"], "test": ["d", "d"]}},
         "Fold '1': utterance 'd' is in both the test and test splits"),
    ],
)
def test_validate_folds_errors(folds, match):
    with pytest.raises(DataError, match=match):
        validate_folds(folds, KNOWN)
