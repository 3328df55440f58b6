"""Reads a corpus described by a CSV manifest that points at one `.npy` array per modality.

The manifest's header names the columns; their order is free:

    utterance_id,speaker,group,label,acoustic,visual,text
    Ses01F_0001,Ses01F,Ses01,happy,features/Ses01F_0001.acoustic.npy,...

`label` is a class name from the configured label names (by default the manifest's own labels,
sorted: `manifest_labels`). Each modality column (named after
`ModalitySpec.name`) holds the path of a float array of shape `(time, feature_dim)` saved with
`numpy.save`, relative to the manifest's directory or absolute. Rows are read and their arrays
loaded one at a time, so memory is bounded by one utterance.
"""

from __future__ import annotations

import csv
import os
from typing import Iterator, Sequence

import numpy as np

from mmin_tf import modalities as modalities_lib
from mmin_tf.data.format import GROUP, LABEL, SPEAKER, UTTERANCE_ID, DataError, Utterance

REQUIRED_COLUMNS = (UTTERANCE_ID, SPEAKER, GROUP, LABEL)
# Array kinds accepted from a `.npy` file: float, signed and unsigned int.
_NUMERIC_KINDS = "fiu"


def read_manifest(
    path: str,
    modalities: Sequence[modalities_lib.ModalitySpec],
    label_names: Sequence[str],
) -> Iterator[Utterance]:
    """Streams the utterances of a CSV manifest, one row (and its arrays) at a time.

    The header is checked when this function is called; rows are read as the iterator advances.
    Features are returned as float32, so that values a float32 record cannot hold (overflow to
    Inf) are caught by `format.validate_utterance`. Shapes and finiteness are checked there, not
    here; `Utterance.source` names the manifest line and every `.npy` path so its errors do too.

    Args:
        path: the CSV file.
        modalities: the configured modalities; one column per modality, named after it.
        label_names: class names; a row's `label` must be one of them and becomes its index.

    Returns:
        An iterator of `Utterance`s in file order.

    Raises:
        DataError: naming the CSV file, line and utterance id, for a missing file, a header with
            missing, extra or repeated columns, a row with the wrong number of fields, an empty
            id/speaker/group, an unknown label, or a missing or unreadable `.npy` file.
    """
    modalities = modalities_lib.validate_modalities(modalities)
    label_names = tuple(label_names)
    if not label_names:
        raise ValueError(f"`label_names` must be non-empty. Received: {label_names}")
    clashes = [spec.name for spec in modalities if spec.name in REQUIRED_COLUMNS]
    if clashes:
        raise ValueError(
            f"Modality names {clashes} clash with the manifest columns {REQUIRED_COLUMNS}; "
            "rename the modalities"
        )
    header = _read_header(path, modalities)
    return _read_rows(path, header, modalities, label_names)


def manifest_labels(path: str) -> list[str]:
    """The distinct labels of a manifest's rows, sorted: the default label order (stored in
    `dataset.json`'s `label_names`)."""
    if not os.path.isfile(path):
        raise DataError(f"Manifest {path} not found")
    _check_text(path)
    with _open(path) as f:
        rows = _csv_rows(path, f)
        header = [column.strip() for column in next(rows, [])]
        if LABEL not in header:
            raise DataError(f"Manifest {path} line 1: no {LABEL!r} column. Received: {header}")
        column = header.index(LABEL)
        labels = {row[column].strip() for _, row in rows if len(row) > column and row[column].strip()}
    if not labels:
        raise DataError(f"Manifest {path} has no labelled rows")
    return sorted(labels)


def _open(path: str):
    # utf-8-sig: spreadsheet programs often start CSV files with a byte-order mark.
    return open(path, newline="", encoding="utf-8-sig")


def _check_text(path: str) -> None:
    """Raises `DataError` naming the first line of `path` that is not UTF-8 (read line by line)."""
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            try:
                line.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                raise DataError(
                    f"Manifest {path} line {number}: not UTF-8 text (byte {line[error.start]:#04x} at column "
                    f"{error.start + 1}); save the manifest as UTF-8") from None


def _csv_rows(path: str, f):
    """The header (a list), then `(line number, cells)` per row: the csv reader's errors (a NUL
    byte, a field over the size limit) become `DataError`s naming the line."""
    reader = csv.reader(f)
    first = True
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise DataError(f"Manifest {path} line {reader.line_num}: cannot be read as CSV ({error})") from None
        yield row if first else (reader.line_num, row)
        first = False


def _read_header(path: str, modalities: Sequence[modalities_lib.ModalitySpec]) -> list[str]:
    if not os.path.isfile(path):
        raise DataError(f"Manifest {path} not found")
    _check_text(path)
    with _open(path) as f:
        header = next(_csv_rows(path, f), None)
    if header is None:
        raise DataError(f"Manifest {path} is empty; line 1 must be the header")
    header = [column.strip() for column in header]
    expected = list(REQUIRED_COLUMNS) + [spec.name for spec in modalities]
    repeated = sorted({column for column in header if header.count(column) > 1})
    missing = [column for column in expected if column not in header]
    extra = [column for column in header if column not in expected]
    if repeated or missing or extra:
        problems = []
        if missing:
            problems.append(f"missing columns {missing}")
        if extra:
            problems.append(f"unexpected columns {extra}")
        if repeated:
            problems.append(f"repeated columns {repeated}")
        raise DataError(
            f"Manifest {path} line 1: header has {', '.join(problems)}. Expected exactly the "
            f"columns {expected} (in any order). Received: {header}"
        )
    return header


def _read_rows(
    path: str,
    header: list[str],
    modalities: tuple[modalities_lib.ModalitySpec, ...],
    label_names: tuple[str, ...],
) -> Iterator[Utterance]:
    base_dir = os.path.dirname(os.path.abspath(path))
    label_index = {name: index for index, name in enumerate(label_names)}
    with _open(path) as f:
        rows = _csv_rows(path, f)
        next(rows)  # The header, checked by _read_header.
        for line, row in rows:
            if not any(cell.strip() for cell in row):
                continue  # Blank line.
            where = f"Manifest {path} line {line}"
            if len(row) != len(header):
                raise DataError(
                    f"{where}: expected {len(header)} fields ({header}), received {len(row)}: "
                    f"{row}"
                )
            cells = {column: cell.strip() for column, cell in zip(header, row)}
            utterance_id = cells[UTTERANCE_ID]
            if not utterance_id:
                raise DataError(f"{where}: empty utterance_id")
            where = f"{where}, utterance {utterance_id!r}"
            for column in (SPEAKER, GROUP):
                if not cells[column]:
                    raise DataError(f"{where}: empty {column}")
            if cells[LABEL] not in label_index:
                raise DataError(
                    f"{where}: unknown label {cells[LABEL]!r}; known labels are "
                    f"{list(label_names)}"
                )
            paths = {spec.name: os.path.join(base_dir, cells[spec.name]) for spec in modalities if cells[spec.name]}
            if not paths:
                raise DataError(f"{where}: no modality: every modality cell is empty")
            features = {spec.name: _load_array(paths[spec.name], spec, where) for spec in modalities if spec.name in paths}
            source = f"{path} line {line} [" + ", ".join(
                f"{name}={npy}" for name, npy in paths.items()
            ) + "]"
            yield Utterance(
                utterance_id=utterance_id,
                speaker=cells[SPEAKER],
                group=cells[GROUP],
                label=label_index[cells[LABEL]],
                features=features,
                source=source,
            )


def _load_array(npy_path: str, spec: modalities_lib.ModalitySpec, where: str) -> np.ndarray:
    if not os.path.isfile(npy_path):
        raise DataError(f"{where}: {spec.name} file {npy_path} not found")
    try:
        array = np.load(npy_path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise DataError(
            f"{where}: cannot read {spec.name} file {npy_path} as a .npy array: {error}"
        ) from None
    if not isinstance(array, np.ndarray):  # An .npz archive loads as NpzFile.
        array.close()
        raise DataError(
            f"{where}: {spec.name} file {npy_path} is not a single .npy array "
            f"(received {type(array).__name__})"
        )
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise DataError(
            f"{where}: {spec.name} file {npy_path} holds {array.dtype} values; expected a float "
            "or integer array"
        )
    with np.errstate(over="ignore", invalid="ignore"):  # Overflow becomes Inf, rejected later.
        return array.astype(np.float32, copy=False)
