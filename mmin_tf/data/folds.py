"""Speaker-independent cross-validation folds.

The paper's protocol (§4.5): leave one group (IEMOCAP/MSP-IMPROV session) out; the held-out group
is split by speaker into validation and test. With two speakers per group every group gives two
folds (speaker A validates and B tests, then the reverse): IEMOCAP's 5 sessions give 10 folds,
MSP-IMPROV's 6 sessions 12. Folds are named "1", "2", ... in group order, as the original code's
`cvNo`.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from mmin_tf.data.format import SPLITS, DataError

Folds = dict[str, dict[str, list[str]]]


def speaker_independent_folds(utterances: Iterable[tuple[str, str, str]]) -> Folds:
    """Builds leave-one-group-out folds from `(utterance_id, speaker, group)` triples.

    Each speaker of a held-out group is the test speaker once; the group's other speakers form the
    validation split; all other groups train.

    Raises:
        DataError: if fewer than two groups exist or a group has a single speaker.
    """
    speakers_by_group: dict[str, list[str]] = {}
    ids_by_speaker: dict[tuple[str, str], list[str]] = {}
    for utterance_id, speaker, group in utterances:
        speakers = speakers_by_group.setdefault(group, [])
        if speaker not in speakers:
            speakers.append(speaker)
        ids_by_speaker.setdefault((group, speaker), []).append(utterance_id)
    if len(speakers_by_group) < 2:
        raise DataError(
            "Speaker-independent folds need at least two groups (sessions). "
            f"Received groups: {sorted(speakers_by_group)}"
        )
    folds: Folds = {}
    for held_out in sorted(speakers_by_group):
        speakers = sorted(speakers_by_group[held_out])
        if len(speakers) < 2:
            raise DataError(
                f"Group {held_out!r} has a single speaker ({speakers[0]!r}); it cannot be split "
                "into validation and test speakers. Give every group at least two speakers."
            )
        train = [
            utterance_id
            for (group, _), ids in sorted(ids_by_speaker.items())
            if group != held_out
            for utterance_id in ids
        ]
        for test_speaker in speakers:
            validation = [
                utterance_id
                for speaker in speakers
                if speaker != test_speaker
                for utterance_id in ids_by_speaker[(held_out, speaker)]
            ]
            folds[str(len(folds) + 1)] = {
                "train": list(train),
                "validation": validation,
                "test": list(ids_by_speaker[(held_out, test_speaker)]),
            }
    return folds


def validate_folds(folds: Mapping[str, Mapping[str, Sequence[str]]], known_ids: set[str]) -> None:
    """Checks that every fold has the three splits, known ids only, and no id in two splits."""
    if not folds:
        raise DataError("No folds defined")
    for name, splits in folds.items():
        if set(splits) != set(SPLITS):
            raise DataError(f"Fold {name!r} must have splits {SPLITS}; received {sorted(splits)}")
        seen: dict[str, str] = {}
        for split in SPLITS:
            if not splits[split]:
                raise DataError(f"Fold {name!r} has an empty {split} split")
            for utterance_id in splits[split]:
                if utterance_id not in known_ids:
                    raise DataError(
                        f"Fold {name!r} {split} split names utterance {utterance_id!r}, "
                        "which is not in the dataset"
                    )
                if utterance_id in seen:
                    raise DataError(
                        f"Fold {name!r}: utterance {utterance_id!r} is in both the "
                        f"{seen[utterance_id]} and {split} splits"
                    )
                seen[utterance_id] = split
