"""Modalities and the missing-modality conditions derived from them.

This module is the one source of modality names, letters, order and feature dimensions. Nothing else
in the package hard-codes three modalities: the conditions, masks and input names are all derived
from a tuple of `ModalitySpec`s.

A *condition* is the set of modalities available for an example. It is named by the letters of its
available modalities in configured order, e.g. `"at"` (acoustic and text available, visual
missing). For three modalities the six missing conditions are `a v t av at vt` and the full
condition is `avt`.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import re
from typing import Iterable, Sequence

_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


class EncoderKind(enum.Enum):
    """The encoder that turns one modality's frame sequence into an utterance embedding."""

    LSTM = "lstm"  # LSTM + max-pool over valid time steps (acoustic, visual; paper §4.3).
    TEXT_CNN = "text_cnn"  # TextCNN with max-over-time pooling (text; Kim 2014).


@dataclasses.dataclass(frozen=True)
class ModalitySpec:
    """One modality of the corpus.

    Attributes:
        name: full lower-case name; also the feature-list key in the dataset and the input name
            of the served model (`acoustic`, `visual`, `text`).
        code: one lower-case letter used in condition names (`a`, `v`, `t`).
        feature_dim: width of one frame of features.
        encoder: which encoder embeds this modality.
    """

    name: str
    code: str
    feature_dim: int
    encoder: EncoderKind

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME_PATTERN.fullmatch(self.name):
            raise ValueError(
                "Modality `name` must be lower-case letters, digits and underscores, starting with "
                f"a letter. Received: name={self.name!r}"
            )
        if not isinstance(self.code, str) or len(self.code) != 1 or not "a" <= self.code <= "z":
            raise ValueError(
                f"Modality `code` must be one lower-case letter. Received: code={self.code!r} "
                f"for modality {self.name!r}"
            )
        if isinstance(self.feature_dim, bool) or not isinstance(self.feature_dim, int) or self.feature_dim < 1:
            raise ValueError(
                f"Modality `feature_dim` must be a positive int. Received: "
                f"feature_dim={self.feature_dim!r} for modality {self.name!r}"
            )
        if not isinstance(self.encoder, EncoderKind):
            raise TypeError(
                f"Modality `encoder` must be an EncoderKind. Received: encoder={self.encoder!r}"
            )

    @property
    def length_key(self) -> str:
        """Name of this modality's valid-frame-count input, e.g. `acoustic_length`."""
        return f"{self.name}_length"

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "code": self.code,
            "feature_dim": self.feature_dim,
            "encoder": self.encoder.value,
        }

    @classmethod
    def from_json(cls, config: dict) -> "ModalitySpec":
        return cls(
            name=config["name"],
            code=config["code"],
            feature_dim=int(config["feature_dim"]),
            encoder=EncoderKind(config["encoder"]),
        )


ACOUSTIC = ModalitySpec("acoustic", "a", 130, EncoderKind.LSTM)  # OpenSMILE ComParE LLDs + deltas.
VISUAL = ModalitySpec("visual", "v", 342, EncoderKind.LSTM)  # Denseface (FER+ DenseNet).
TEXT = ModalitySpec("text", "t", 1024, EncoderKind.TEXT_CNN)  # BERT-large token embeddings.
DEFAULT_MODALITIES: tuple[ModalitySpec, ...] = (ACOUSTIC, VISUAL, TEXT)


def validate_modalities(modalities: Sequence[ModalitySpec]) -> tuple[ModalitySpec, ...]:
    """Checks that `modalities` is a non-empty tuple of specs with unique names and codes."""
    modalities = tuple(modalities)
    if not modalities:
        raise ValueError("At least one modality must be configured. Received: modalities=()")
    for spec in modalities:
        if not isinstance(spec, ModalitySpec):
            raise TypeError(f"Expected ModalitySpec instances. Received: {spec!r}")
    for attribute in ("name", "code"):
        values = [getattr(spec, attribute) for spec in modalities]
        duplicates = sorted({value for value in values if values.count(value) > 1})
        if duplicates:
            raise ValueError(
                f"Modality {attribute}s must be unique. Received duplicates: {duplicates}"
            )
    return modalities


@dataclasses.dataclass(frozen=True)
class Condition:
    """Which modalities are available, as one bool per configured modality (configured order)."""

    name: str
    available: tuple[bool, ...]

    @property
    def is_full(self) -> bool:
        return all(self.available)


def condition(available: Iterable[bool], modalities: Sequence[ModalitySpec]) -> Condition:
    """Builds the condition with availability `available` (one bool per modality)."""
    available = tuple(bool(flag) for flag in available)
    if len(available) != len(modalities):
        raise ValueError(
            f"Expected one availability flag per modality ({len(modalities)}). "
            f"Received: {available}"
        )
    if not any(available):
        raise ValueError("A condition needs at least one available modality. Received: none")
    name = "".join(spec.code for spec, flag in zip(modalities, available) if flag)
    return Condition(name=name, available=available)


def missing_conditions(modalities: Sequence[ModalitySpec]) -> tuple[Condition, ...]:
    """Every non-empty proper subset of the modalities: by size, then in configured order.

    For (acoustic, visual, text) this is `a v t av at vt`, the paper's Table 1 conditions.
    """
    modalities = validate_modalities(modalities)
    count = len(modalities)
    conditions = []
    for size in range(1, count):
        for subset in itertools.combinations(range(count), size):
            conditions.append(condition([i in subset for i in range(count)], modalities))
    return tuple(conditions)


def full_condition(modalities: Sequence[ModalitySpec]) -> Condition:
    """The condition with every modality available (`avt`)."""
    return condition([True] * len(modalities), modalities)


def evaluation_conditions(modalities: Sequence[ModalitySpec]) -> tuple[Condition, ...]:
    """The missing conditions followed by the full condition: `a v t av at vt avt`."""
    return missing_conditions(modalities) + (full_condition(modalities),)


def condition_label(name: str) -> str:
    """The paper's notation for a condition or a results column: `"at"` -> `"{a,t}"`, `"average"` -> `"Average"`."""
    return "Average" if name == "average" else "{" + ",".join(name) + "}"


def parse_condition(name: str, modalities: Sequence[ModalitySpec]) -> Condition:
    """Parses a condition name such as `"at"`; letters may come in any order."""
    codes = [spec.code for spec in modalities]
    unknown = sorted(set(name) - set(codes))
    if not name or unknown or len(set(name)) != len(name):
        raise ValueError(
            f"A condition is a non-empty set of distinct modality letters from {''.join(codes)!r}. "
            f"Received: {name!r}"
        )
    return condition([code in name for code in codes], modalities)
