"""What a corpus reader returns: the media-manifest records and the counts of every rule applied.

A reader never drops an utterance silently: each utterance of the release is either kept (and
counted per class and per group) or counted under the rule that removed it (its raw label, or a
named rule such as `shorter_than_min_duration`). `log_counts` writes the counts with
`absl.logging`; readers call it once when they finish.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Mapping, Sequence

from absl import logging

from mmin_tf.data.media_manifest import MediaRecord


@dataclasses.dataclass(frozen=True)
class ReadCounts:
    """The counts of one reading of a corpus release.

    Attributes:
        corpus: the corpus name, for messages ("IEMOCAP", "MSP-IMPROV").
        kept_per_label: class name -> utterances kept, in the configured label order (zeros
            included).
        kept_per_group: group (session) -> utterances kept, in group order.
        dropped_per_label: raw label of the release -> utterances dropped because the label is
            not mapped to a class (e.g. IEMOCAP `fru`, `xxx`; MSP-IMPROV `O`, `X`).
        rule_counts: named rule -> utterances (or lines) it applied to: the selection rules and
            the handled quirks of the release (see each reader's module docstring).
    """

    corpus: str
    kept_per_label: Mapping[str, int]
    kept_per_group: Mapping[str, int]
    dropped_per_label: Mapping[str, int]
    rule_counts: Mapping[str, int]

    @property
    def total(self) -> int:
        """Utterances kept."""
        return sum(self.kept_per_label.values())

    def summary(self) -> str:
        """One line per aspect, as logged."""

        def join(counts: Mapping[str, int]) -> str:
            return ", ".join(f"{name} {count}" for name, count in counts.items()) or "none"

        return "\n".join((
            f"{self.corpus}: kept {self.total} utterances",
            f"  per class: {join(self.kept_per_label)}",
            f"  per group: {join(self.kept_per_group)}",
            f"  dropped by label: {join(self.dropped_per_label)}",
            f"  rules: {join(self.rule_counts)}",
        ))


@dataclasses.dataclass(frozen=True)
class CorpusReading:
    """The records a reader made, in release order, and the counts of how they were selected."""

    records: tuple[MediaRecord, ...]
    counts: ReadCounts


def validate_label_map(label_map: Sequence[tuple[str, str]], label_names: Sequence[str]) -> None:
    """Raises `ValueError` unless `label_map` maps distinct release labels to classes of `label_names`."""
    label_names = tuple(label_names)
    if not label_names or len(set(label_names)) != len(label_names):
        raise ValueError(f"`label_names` must be distinct and non-empty. Received: label_names={label_names}")
    if not all(isinstance(pair, tuple) and len(pair) == 2 for pair in label_map):
        raise ValueError(f"`label_map` must be (release label, class name) pairs. Received: label_map={label_map}")
    raw = [pair[0] for pair in label_map]
    if not raw or len(set(raw)) != len(raw):
        raise ValueError(f"`label_map` must map each release label once. Received: label_map={label_map}")
    unknown = sorted({pair[1] for pair in label_map} - set(label_names))
    if unknown:
        raise ValueError(
            f"`label_map` maps to classes {unknown} that are not in label_names={label_names}. "
            f"Received: label_map={label_map}")


class CountsBuilder:
    """Accumulates the counts while a reader runs (library-internal helper of the readers)."""

    def __init__(self, corpus: str, label_names: Sequence[str]):
        self._corpus = corpus
        self._label_names = tuple(label_names)
        self._kept_per_label: collections.Counter = collections.Counter()
        self._kept_per_group: collections.Counter = collections.Counter()
        self._dropped_per_label: collections.Counter = collections.Counter()
        self._rules: collections.Counter = collections.Counter()

    def keep(self, label: str, group: str) -> None:
        self._kept_per_label[label] += 1
        self._kept_per_group[group] += 1

    def drop_label(self, raw_label: str) -> None:
        self._dropped_per_label[raw_label] += 1

    def rule(self, name: str, count: int = 1) -> None:
        self._rules[name] += count

    def build(self) -> ReadCounts:
        return ReadCounts(
            corpus=self._corpus,
            kept_per_label={name: self._kept_per_label[name] for name in self._label_names},
            kept_per_group=dict(sorted(self._kept_per_group.items())),
            dropped_per_label=dict(sorted(self._dropped_per_label.items())),
            rule_counts=dict(sorted(self._rules.items())),
        )


def log_counts(
    counts: ReadCounts,
    expected: Mapping[str, int] | None = None,
    expected_per_group: Mapping[str, int] | None = None,
) -> None:
    """Logs `counts`; with the paper's class (and group) counts also says whether they match.

    A mismatch is a warning, not an error: a reader run on part of a release or with other
    settings is expected to differ.
    """
    for line in counts.summary().splitlines():
        logging.info("%s", line)
    for name, wanted, received in (("class", expected, counts.kept_per_label),
                                   ("group", expected_per_group, counts.kept_per_group)):
        if wanted is None:
            continue
        if dict(received) == dict(wanted):
            logging.info("%s: the %s counts match the paper's (%d utterances).", counts.corpus, name, counts.total)
        else:
            logging.warning(
                "%s: the %s counts differ from the paper's %s (total %d); received %s (total %d).",
                counts.corpus, name, dict(wanted), sum(wanted.values()), dict(received), counts.total,
            )
