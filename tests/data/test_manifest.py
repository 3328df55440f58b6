"""Tests for the CSV manifest importer (`mmin_tf.data.manifest`)."""

import csv
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from mmin_tf.data import format as format_lib
from mmin_tf.data.format import DataError
from mmin_tf.data.manifest import read_manifest
from mmin_tf.data.writer import DatasetWriter
from mmin_tf.modalities import EncoderKind, ModalitySpec

MODALITIES = (
    ModalitySpec("acoustic", "a", 3, EncoderKind.LSTM),
    ModalitySpec("visual", "v", 4, EncoderKind.LSTM),
    ModalitySpec("text", "t", 5, EncoderKind.TEXT_CNN),
)
LABEL_NAMES = ("happy", "anger", "sadness", "neutral")
COLUMNS = ["utterance_id", "speaker", "group", "label", "acoustic", "visual", "text"]
# Two groups of two speakers: enough for speaker-independent folds.
SPEAKERS = (("Ses01", "Ses01F"), ("Ses01", "Ses01M"), ("Ses02", "Ses02F"), ("Ses02", "Ses02M"))


def _rows(num_per_speaker=2):
    """Utterance rows with float32 features of lengths 1..3 and every label used."""
    rng = np.random.default_rng(0)
    rows = []
    for index in range(len(SPEAKERS) * num_per_speaker):
        group, speaker = SPEAKERS[index % len(SPEAKERS)]
        rows.append({
            "utterance_id": f"{speaker}_{index:03d}",
            "speaker": speaker,
            "group": group,
            "label": LABEL_NAMES[index % len(LABEL_NAMES)],
            **{
                spec.name: rng.normal(size=(1 + (index + i) % 3, spec.feature_dim)).astype(
                    np.float32
                )
                for i, spec in enumerate(MODALITIES)
            },
        })
    return rows


def _write_corpus(directory, rows, columns=COLUMNS):
    """Saves each row's arrays under `directory/npy/` and writes `directory/corpus.csv`."""
    os.makedirs(os.path.join(directory, "npy"), exist_ok=True)
    path = os.path.join(directory, "corpus.csv")
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            cells = []
            for column in columns:
                value = row.get(column, "")
                if isinstance(value, np.ndarray):
                    relative = os.path.join("npy", f"{row['utterance_id']}_{column}.npy")
                    np.save(os.path.join(directory, relative), value)
                    value = relative
                cells.append(value)
            writer.writerow(cells)
    return path


def _import(manifest_path, out_dir):
    with DatasetWriter(
        out_dir, name="tiny", modalities=MODALITIES, label_names=LABEL_NAMES,
        utterances_per_shard=3,
    ) as writer:
        for utterance in read_manifest(manifest_path, MODALITIES, LABEL_NAMES):
            writer.write(utterance)
        return writer.finish()


def _names(*parts):
    """A regex that matches a message containing every one of `parts`, in any order."""
    return "(?s)" + "".join(f"(?=.*{re.escape(part)})" for part in parts)


def _read_records(out_dir):
    info = format_lib.load_info(out_dir)
    dataset = tf.data.TFRecordDataset(format_lib.shard_paths(out_dir, info))
    return [format_lib.parse_sequence_example(record, MODALITIES) for record in dataset]


def test_good_manifest_round_trips_exactly(tmp_path):
    rows = _rows()
    manifest = _write_corpus(tmp_path / "corpus", rows)
    out_dir = str(tmp_path / "out")

    info = _import(manifest, out_dir)

    assert sorted(os.listdir(tmp_path)) == ["corpus", "out"]
    assert info.num_utterances == len(rows)
    assert info.label_names == LABEL_NAMES
    assert len(info.shards) == 3  # 8 utterances, 3 per shard.
    parsed = _read_records(out_dir)
    assert [p["utterance_id"].numpy().decode() for p in parsed] == [
        row["utterance_id"] for row in rows
    ]
    for record, row in zip(parsed, rows):
        assert record["speaker"].numpy().decode() == row["speaker"]
        assert record["group"].numpy().decode() == row["group"]
        assert int(record["label"]) == LABEL_NAMES.index(row["label"])
        for spec in MODALITIES:
            assert record[spec.name].dtype == tf.float32
            np.testing.assert_array_equal(record[spec.name].numpy(), row[spec.name])
            assert int(record[spec.length_key]) == len(row[spec.name])
    with open(os.path.join(out_dir, "folds.json")) as f:
        folds = json.load(f)
    assert list(folds) == ["1", "2", "3", "4"]
    assert folds["1"] == {
        "train": ["Ses02F_002", "Ses02F_006", "Ses02M_003", "Ses02M_007"],
        "validation": ["Ses01M_001", "Ses01M_005"],
        "test": ["Ses01F_000", "Ses01F_004"],
    }


def test_columns_in_any_order_absolute_paths_and_float64(tmp_path):
    rows = _rows()
    rows[0]["acoustic"] = rows[0]["acoustic"].astype(np.float64)
    directory = tmp_path / "corpus"
    manifest = _write_corpus(directory, rows, columns=list(reversed(COLUMNS)))
    absolute = os.path.join(directory, "npy", "absolute_visual.npy")
    np.save(absolute, rows[1]["visual"])
    with open(manifest) as f:
        relative = os.path.join("npy", f"{rows[1]['utterance_id']}_visual.npy")
        text = f.read().replace(relative, absolute)
    with open(manifest, "w") as f:
        f.write(text + "\n")  # A trailing blank line is skipped.

    utterances = list(read_manifest(manifest, MODALITIES, LABEL_NAMES))

    assert [u.utterance_id for u in utterances] == [row["utterance_id"] for row in rows]
    assert utterances[0].features["acoustic"].dtype == np.float32
    np.testing.assert_array_equal(utterances[0].features["acoustic"], rows[0]["acoustic"])
    np.testing.assert_array_equal(utterances[1].features["visual"], rows[1]["visual"])
    assert absolute in utterances[1].source
    assert "corpus.csv line 3" in utterances[1].source


def _set(index, column, value):
    def change(rows):
        rows[index][column] = value
    return change


# Each case: (change to the rows, utterance id the error must name, file name it must name).
BAD_ROWS = {
    "wrong_feature_dim": (
        _set(2, "visual", np.zeros((2, 3), np.float32)), "Ses02F_002", "Ses02F_002_visual.npy"),
    "nan": (_set(3, "acoustic", np.full((2, 3), np.nan, np.float32)), "Ses02M_003", "corpus.csv"),
    "inf": (
        _set(1, "text", np.full((1, 5), np.inf, np.float32)), "Ses01M_001", "Ses01M_001_text.npy"),
    "float32_overflow": (
        _set(1, "text", np.full((1, 5), 1e300, np.float64)), "Ses01M_001", "corpus.csv"),
    "empty_sequence": (
        _set(0, "acoustic", np.zeros((0, 3), np.float32)), "Ses01F_000", "Ses01F_000_acoustic.npy"),
    "one_dimensional": (_set(0, "text", np.zeros(5, np.float32)), "Ses01F_000", "corpus.csv"),
    "string_array": (_set(0, "text", np.array([["a"] * 5])), "Ses01F_000", "Ses01F_000_text.npy"),
    "unknown_label": (_set(4, "label", "angry"), "Ses01F_004", "corpus.csv"),
    "empty_speaker": (_set(4, "speaker", ""), "Ses01F_004", "corpus.csv"),
    "no_modality": (lambda rows: [rows[4].__setitem__(spec.name, "") for spec in MODALITIES],
                    "Ses01F_004", "corpus.csv line 6"),
    "duplicate_id": (_set(5, "utterance_id", "Ses01F_000"), "Ses01F_000", "corpus.csv"),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_bad_row_raises_naming_utterance_and_file_and_leaves_nothing(tmp_path, case):
    change, utterance_id, filename = BAD_ROWS[case]
    rows = _rows()
    change(rows)
    manifest = _write_corpus(tmp_path / "corpus", rows)

    with pytest.raises(DataError, match=_names(repr(utterance_id), filename)):
        _import(manifest, str(tmp_path / "out"))

    assert os.listdir(tmp_path) == ["corpus"]


def test_an_empty_cell_is_an_absent_modality(tmp_path):
    rows = _rows()
    rows[4]["visual"] = ""
    rows[5]["visual"] = rows[5]["text"] = ""
    manifest = _write_corpus(tmp_path / "corpus", rows)
    [fourth] = [u for u in read_manifest(manifest, MODALITIES, LABEL_NAMES) if u.utterance_id == "Ses01F_004"]
    assert set(fourth.features) == {"acoustic", "text"}
    out_dir = str(tmp_path / "out")
    info = _import(manifest, out_dir)
    assert info.presence == {"acoustic": 8, "visual": 6, "text": 7} and not info.is_complete
    assert info.fold_presence["1"]["test"] == {"acoustic": 2, "visual": 1, "text": 2}  # Ses01F_000, Ses01F_004
    assert info.length_statistics["visual"].minimum >= 1  # absent ones are not 0-frame lengths
    parsed = {p["utterance_id"].numpy().decode(): p for p in _read_records(out_dir)}
    assert int(parsed["Ses01F_004"]["visual_length"]) == 0 and parsed["Ses01F_004"]["visual"].shape == (0, 4)
    assert int(parsed["Ses01M_005"]["text_length"]) == 0
    assert format_lib.load_info(out_dir).presence == info.presence


def test_unknown_label_lists_known_labels(tmp_path):
    rows = _rows()
    rows[4]["label"] = "angry"
    manifest = _write_corpus(tmp_path / "corpus", rows)
    with pytest.raises(DataError, match=_names("line 6", "'angry'", str(list(LABEL_NAMES)))):
        list(read_manifest(manifest, MODALITIES, LABEL_NAMES))


def test_missing_npy_file(tmp_path):
    manifest = _write_corpus(tmp_path / "corpus", _rows())
    missing = tmp_path / "corpus" / "npy" / "Ses02F_006_text.npy"
    os.remove(missing)

    with pytest.raises(DataError, match=_names("'Ses02F_006'", "corpus.csv line 8", str(missing))):
        _import(manifest, str(tmp_path / "out"))

    assert os.listdir(tmp_path) == ["corpus"]


def test_unreadable_npy_file(tmp_path):
    manifest = _write_corpus(tmp_path / "corpus", _rows())
    broken = tmp_path / "corpus" / "npy" / "Ses01M_001_acoustic.npy"
    broken.write_bytes(b"not an array")

    with pytest.raises(DataError, match=_names("'Ses01M_001'", "cannot read", str(broken))):
        _import(manifest, str(tmp_path / "out"))

    assert os.listdir(tmp_path) == ["corpus"]


def test_npz_archive_instead_of_npy(tmp_path):
    manifest = _write_corpus(tmp_path / "corpus", _rows())
    archive = tmp_path / "corpus" / "npy" / "Ses01M_001_acoustic.npy"
    with open(archive, "wb") as f:
        np.savez(f, features=np.zeros((2, 3)))
    with pytest.raises(DataError, match=_names("'Ses01M_001'", "not a single .npy", str(archive))):
        list(read_manifest(manifest, MODALITIES, LABEL_NAMES))


@pytest.mark.parametrize(
    "columns, problem",
    [
        (COLUMNS[:-1], "missing columns ['text']"),
        (COLUMNS + ["notes"], "unexpected columns ['notes']"),
        (COLUMNS + ["text"], "repeated columns ['text']"),
        (["utterance", *COLUMNS[1:]], "missing columns ['utterance_id']"),
    ],
)
def test_bad_header_raises_naming_file_and_columns_and_leaves_nothing(tmp_path, columns, problem):
    manifest = _write_corpus(tmp_path / "corpus", _rows(), columns=columns)

    with pytest.raises(DataError, match=_names("corpus.csv line 1", problem)):
        _import(manifest, str(tmp_path / "out"))

    assert os.listdir(tmp_path) == ["corpus"]


def test_header_is_checked_before_iterating(tmp_path):
    manifest = _write_corpus(tmp_path / "corpus", _rows(), columns=COLUMNS[:-1])
    with pytest.raises(DataError, match="missing columns"):
        read_manifest(manifest, MODALITIES, LABEL_NAMES)


def test_row_with_wrong_number_of_fields(tmp_path):
    manifest = _write_corpus(tmp_path / "corpus", _rows())
    with open(manifest, "a") as f:
        f.write("Ses02M_099,Ses02M,Ses02,happy\n")
    with pytest.raises(DataError, match=_names("corpus.csv line 10", "expected 7 fields")):
        list(read_manifest(manifest, MODALITIES, LABEL_NAMES))


def test_empty_utterance_id(tmp_path):
    rows = _rows()
    rows[2]["utterance_id"] = ""
    manifest = _write_corpus(tmp_path / "corpus", rows)
    with pytest.raises(DataError, match=_names("corpus.csv line 4", "empty utterance_id")):
        list(read_manifest(manifest, MODALITIES, LABEL_NAMES))


def test_missing_and_empty_manifest(tmp_path):
    with pytest.raises(DataError, match=_names(str(tmp_path / "absent.csv"), "not found")):
        read_manifest(str(tmp_path / "absent.csv"), MODALITIES, LABEL_NAMES)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match=_names("empty.csv", "is empty")):
        read_manifest(str(tmp_path / "empty.csv"), MODALITIES, LABEL_NAMES)


def test_configuration_errors(tmp_path):
    manifest = _write_corpus(tmp_path / "corpus", _rows())
    with pytest.raises(ValueError, match="`label_names` must be non-empty"):
        read_manifest(manifest, MODALITIES, ())
    clashing = (ModalitySpec("label", "l", 2, EncoderKind.LSTM),)
    with pytest.raises(ValueError, match=r"\['label'\] clash"):
        read_manifest(manifest, clashing, LABEL_NAMES)


def test_manifest_labels_are_the_sorted_distinct_labels(tmp_path):
    from mmin_tf.data.manifest import manifest_labels

    path = tmp_path / "labels.csv"
    path.write_text("utterance_id,label,speaker\nu1,sad,s\nu2, happy ,s\nu3,sad,s\n\n", encoding="utf-8")
    assert manifest_labels(str(path)) == ["happy", "sad"]
    (tmp_path / "nolabel.csv").write_text("utterance_id,speaker\nu1,s\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 1: no 'label' column"):
        manifest_labels(str(tmp_path / "nolabel.csv"))
    (tmp_path / "empty.csv").write_text("utterance_id,label\n", encoding="utf-8")
    with pytest.raises(DataError, match="has no labelled rows"):
        manifest_labels(str(tmp_path / "empty.csv"))
    with pytest.raises(DataError, match="not found"):
        manifest_labels(str(tmp_path / "none.csv"))
