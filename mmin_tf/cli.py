"""Parsing helpers shared by the command-line entry points (pure functions, no FLAGS)."""

from __future__ import annotations

import sys
from typing import Callable, Sequence

from absl import app

from mmin_tf import modalities as modalities_lib

# Errors that mean "bad input or settings" (DataError and RunError are ValueErrors): reported as
# one line on stderr with exit status 1, without a traceback.
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError)


def run_main(main: Callable, program: str, errors: tuple = USER_ERRORS, flags_parser: Callable = None) -> None:
    """Runs an absl `main`; `errors` become `program: error: message` on stderr and exit 1.

    `flags_parser`: as `absl.app.run`'s (e.g. one that leaves unknown flags to another parser).
    """
    try:
        app.run(main, **({} if flags_parser is None else {"flags_parser": flags_parser}))
    except errors as error:
        print(f"{program}: error: {error}", file=sys.stderr)
        sys.exit(1)


def parse_modalities(entries: Sequence[str]) -> tuple[modalities_lib.ModalitySpec, ...]:
    """Parses `name:code:feature_dim:encoder` entries, e.g. `acoustic:a:130:lstm`.

    An empty sequence gives the default modalities (acoustic, visual, text at the paper's dims).
    """
    if not entries:
        return modalities_lib.DEFAULT_MODALITIES
    specs = []
    for entry in entries:
        parts = entry.split(":")
        if len(parts) != 4 or not parts[2].isdigit():
            raise ValueError(
                "A modality is given as name:code:feature_dim:encoder, e.g. acoustic:a:130:lstm; "
                f"encoder is one of {[kind.value for kind in modalities_lib.EncoderKind]}. "
                f"Received: {entry!r}"
            )
        name, code, feature_dim, encoder = parts
        try:
            kind = modalities_lib.EncoderKind(encoder)
        except ValueError:
            raise ValueError(
                f"Unknown encoder {encoder!r} in {entry!r}; expected one of "
                f"{[kind.value for kind in modalities_lib.EncoderKind]}"
            ) from None
        specs.append(modalities_lib.ModalitySpec(name, code, int(feature_dim), kind))
    return modalities_lib.validate_modalities(specs)


def parse_int_mapping(entries: Sequence[str], what: str) -> dict[str, int]:
    """Parses `key:int` entries such as `acoustic:150`."""
    mapping = {}
    for entry in entries:
        key, _, value = entry.partition(":")
        if not key or not value.lstrip("-").isdigit():
            raise ValueError(f"{what} entries are name:integer. Received: {entry!r}")
        mapping[key] = int(value)
    return mapping
