"""Tests for the importer of the original MMIN feature release (`mmin_tf.data.mmin_features`)."""

import json
import os
import re

import h5py
import numpy as np
import pytest
import tensorflow as tf

from mmin_tf.data import format as format_lib
from mmin_tf.data import mmin_features
from mmin_tf.data.format import DataError
from mmin_tf.data.writer import DatasetWriter
from mmin_tf.modalities import EncoderKind, ModalitySpec

MODALITIES = (
    ModalitySpec("acoustic", "a", 3, EncoderKind.LSTM),
    ModalitySpec("visual", "v", 4, EncoderKind.LSTM),
    ModalitySpec("text", "t", 5, EncoderKind.TEXT_CNN),
)
LABEL_NAMES = mmin_features.DEFAULT_LABEL_NAMES
FILES = {"acoustic": "A/comparE.h5", "visual": "V/denseface.h5", "text": "L/bert_large.h5"}

# Two sessions of two speakers, two utterances each: id -> (speaker, group).
IEMOCAP_IDS = {
    "Ses01F_impro01_F000": ("Ses01F", "Ses01"),
    "Ses01F_impro01_M001": ("Ses01M", "Ses01"),
    "Ses01M_script02_1_F002": ("Ses01F", "Ses01"),
    "Ses01M_script02_1_M003": ("Ses01M", "Ses01"),
    "Ses02F_impro03_F004": ("Ses02F", "Ses02"),
    "Ses02F_impro03_M005": ("Ses02M", "Ses02"),
    "Ses02M_impro04_F006": ("Ses02F", "Ses02"),
    "Ses02M_impro04_M007": ("Ses02M", "Ses02"),
}
MSP_IDS = {
    "MSP-IMPROV-S01A-F01-P-FM01": ("F01", "S01"),
    "MSP-IMPROV-S01A-M01-S-MF02": ("M01", "S01"),
    "MSP-IMPROV-S01B-F01-R-FM03": ("F01", "S01"),
    "MSP-IMPROV-S01B-M01-T-MF04": ("M01", "S01"),
    "MSP-IMPROV-S02A-F02-P-FM05": ("F02", "S02"),
    "MSP-IMPROV-S02A-M02-S-MF06": ("M02", "S02"),
    "MSP-IMPROV-S02C-F02-R-FM07": ("F02", "S02"),
    "MSP-IMPROV-S02C-M02-T-MF08": ("M02", "S02"),
}


def _folds(ids):
    """Release folds: leave one session out, its first speaker validates, the other tests."""
    ids = list(ids)
    session_1, session_2 = ids[:4], ids[4:]
    return {
        "1": {"train": session_2, "validation": session_1[0::2], "test": session_1[1::2]},
        "2": {"train": session_1, "validation": session_2[0::2], "test": session_2[1::2]},
    }


def _labels(ids):
    return {utterance_id: index % 4 for index, utterance_id in enumerate(ids)}


def _features(ids):
    rng = np.random.default_rng(1)
    return {
        utterance_id: {
            spec.name: rng.normal(size=(1 + (index + i) % 4, spec.feature_dim)).astype(np.float32)
            for i, spec in enumerate(MODALITIES)
        }
        for index, utterance_id in enumerate(ids)
    }


def _write_release(root, corpus, ids, folds=None, labels=None, features=None, files=FILES):
    """Writes a release in the IEMOCAP (one-hot, bytes (n, 1)) or MSP (int, str (n,)) format."""
    folds = folds or _folds(ids)
    labels = labels or _labels(ids)
    features = features or _features(ids)
    for name, relative in files.items():
        path = os.path.join(root, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with h5py.File(path, "w") as f:
            for utterance_id, arrays in features.items():
                f[utterance_id] = arrays[name]
    for fold, splits in folds.items():
        fold_dir = os.path.join(root, "target", fold)
        os.makedirs(fold_dir)
        for prefix, split in (("trn", "train"), ("val", "validation"), ("tst", "test")):
            split_ids = splits[split]
            split_labels = [labels.get((fold, i), labels.get(i)) for i in split_ids]
            if corpus == "iemocap":
                label_array = np.eye(4, dtype=np.float32)[split_labels]
                names = np.array([[i.encode()] for i in split_ids])
            else:
                label_array = np.array(split_labels, dtype=np.int64)
                names = np.array(split_ids)
            np.save(os.path.join(fold_dir, f"{prefix}_label.npy"), label_array)
            np.save(os.path.join(fold_dir, f"{prefix}_int2name.npy"), names)
    return str(root)


def _import(release, out_dir):
    with DatasetWriter(
        out_dir, name="release", modalities=MODALITIES, label_names=LABEL_NAMES
    ) as writer:
        for utterance in release.utterances():
            writer.write(utterance)
        return writer.finish(release.folds)


def _names(*parts):
    """A regex that matches a message containing every one of `parts`, in any order."""
    return "(?s)" + "".join(f"(?=.*{re.escape(part)})" for part in parts)


@pytest.mark.parametrize("corpus, ids", [("iemocap", IEMOCAP_IDS), ("msp", MSP_IDS)])
def test_release_imports_folds_labels_and_features_exactly(tmp_path, corpus, ids):
    features = _features(ids)
    labels = _labels(ids)
    root = _write_release(tmp_path / "release", corpus, ids, features=features)
    out_dir = str(tmp_path / "out")

    release = mmin_features.read_release(root, MODALITIES)
    info = _import(release, out_dir)

    assert release.folds == _folds(ids)
    assert release.labels == labels
    assert release.acoustic_statistics == {}
    with open(os.path.join(out_dir, "folds.json")) as f:
        assert json.load(f) == _folds(ids)
    assert info.fold_names == ("1", "2")
    assert info.num_utterances == len(ids)
    dataset = tf.data.TFRecordDataset(format_lib.shard_paths(out_dir, info))
    parsed = [format_lib.parse_sequence_example(record, MODALITIES) for record in dataset]
    assert [p["utterance_id"].numpy().decode() for p in parsed] == sorted(ids)
    for record in parsed:
        utterance_id = record["utterance_id"].numpy().decode()
        speaker, group = ids[utterance_id]
        assert record["speaker"].numpy().decode() == speaker
        assert record["group"].numpy().decode() == group
        assert int(record["label"]) == labels[utterance_id]
        for spec in MODALITIES:
            expected = features[utterance_id][spec.name]
            assert record[spec.name].numpy().tobytes() == expected.tobytes()


def test_fold_directories_sort_numerically(tmp_path):
    folds = _folds(IEMOCAP_IDS)
    root = _write_release(
        tmp_path / "release", "iemocap", IEMOCAP_IDS, folds={"10": folds["1"], "9": folds["2"]}
    )
    release = mmin_features.read_release(root, MODALITIES)
    assert list(release.folds) == ["9", "10"]
    assert release.folds["10"] == folds["1"]


def test_feature_files_override_and_mean_std(tmp_path):
    files = {**FILES, "acoustic": "A/comparE_raw.h5"}
    root = _write_release(tmp_path / "release", "msp", MSP_IDS, files=files)
    with h5py.File(os.path.join(root, "A", "comparE_mean_std.h5"), "w") as f:
        for fold in ("2", "1", "10"):
            f[f"{fold}/mean"] = np.full(3, int(fold), np.float32)
            f[f"{fold}/std"] = np.ones(3, np.float32)

    release = mmin_features.read_release(
        root, MODALITIES, feature_files={"acoustic": "A/comparE_raw.h5"}
    )

    assert release.feature_paths["acoustic"] == os.path.join(root, "A/comparE_raw.h5")
    assert list(release.acoustic_statistics) == ["1", "2", "10"]
    np.testing.assert_array_equal(release.acoustic_statistics["10"]["mean"], [10, 10, 10])
    np.testing.assert_array_equal(release.acoustic_statistics["2"]["std"], [1, 1, 1])
    assert len(list(release.utterances())) == len(MSP_IDS)


def test_read_mean_std_rejects_malformed_group(tmp_path):
    os.makedirs(tmp_path / "A")
    with h5py.File(tmp_path / "A" / "comparE_mean_std.h5", "w") as f:
        f["1/mean"] = np.zeros(3)
    with pytest.raises(DataError, match=_names("comparE_mean_std.h5", "'1'", "'mean' and 'std'")):
        mmin_features.read_mean_std(str(tmp_path))


@pytest.mark.parametrize(
    "utterance_id, expected",
    [
        ("Ses01F_impro01_F000", ("Ses01F", "Ses01")),
        ("Ses01F_impro01_M012", ("Ses01M", "Ses01")),
        ("Ses05M_script01_1b_F003", ("Ses05F", "Ses05")),
        ("MSP-IMPROV-S01A-F01-P-FM01", ("F01", "S01")),
        ("MSP-IMPROV-S06B-M06-R-MM04", ("M06", "S06")),
        ("speaker7_utt3", ("unknown", "unknown")),
    ],
)
def test_speaker_and_group(utterance_id, expected):
    assert mmin_features.speaker_and_group(utterance_id) == expected


def _delete_h5_key(root, relative, utterance_id):
    with h5py.File(os.path.join(root, relative), "a") as f:
        del f[utterance_id]


def _poison(root, relative, utterance_id, array):
    _delete_h5_key(root, relative, utterance_id)
    with h5py.File(os.path.join(root, relative), "a") as f:
        f[utterance_id] = array


def _replace_with_group(root, relative, utterance_id):
    _delete_h5_key(root, relative, utterance_id)
    with h5py.File(os.path.join(root, relative), "a") as f:
        f.create_group(utterance_id)


def _inconsistent_labels(ids):
    labels = _labels(ids)
    labels[("2", "Ses01F_impro01_F000")] = 3  # Fold 1 says 0.
    return labels


# Each case: (change to a written release, utterance id and file name the error must name).
BAD_RELEASES = {
    "missing_h5_key": (
        lambda root: _delete_h5_key(root, FILES["visual"], "Ses02F_impro03_M005"),
        "Ses02F_impro03_M005", "V/denseface.h5"),
    "missing_h5_file": (
        lambda root: os.remove(os.path.join(root, FILES["text"])),
        "Ses01F_impro01_F000", "L/bert_large.h5"),
    "wrong_feature_dim": (
        lambda root: _poison(root, FILES["text"], "Ses01M_script02_1_F002", np.zeros((2, 4))),
        "Ses01M_script02_1_F002", "L/bert_large.h5"),
    "nan": (
        lambda root: _poison(
            root, FILES["acoustic"], "Ses02M_impro04_F006", np.full((2, 3), np.nan)),
        "Ses02M_impro04_F006", "A/comparE.h5"),
    "empty_sequence": (
        lambda root: _poison(root, FILES["visual"], "Ses01F_impro01_M001", np.zeros((0, 4))),
        "Ses01F_impro01_M001", "V/denseface.h5"),
    "group_instead_of_dataset": (
        lambda root: _replace_with_group(root, FILES["visual"], "Ses01F_impro01_M001"),
        "Ses01F_impro01_M001", "V/denseface.h5"),
    "string_dataset": (
        lambda root: _poison(root, FILES["text"], "Ses02M_impro04_M007", np.array([b"x"])),
        "Ses02M_impro04_M007", "L/bert_large.h5"),
}


@pytest.mark.parametrize("case", sorted(BAD_RELEASES))
def test_bad_release_raises_naming_utterance_and_file_and_leaves_nothing(tmp_path, case):
    change, utterance_id, filename = BAD_RELEASES[case]
    root = _write_release(tmp_path / "release", "iemocap", IEMOCAP_IDS)
    change(root)
    out_dir = str(tmp_path / "out")

    with pytest.raises(DataError, match=_names(repr(utterance_id), filename)):
        _import(mmin_features.read_release(root, MODALITIES), out_dir)

    assert os.listdir(tmp_path) == ["release"]


def test_inconsistent_labels_across_folds_name_both_folds(tmp_path):
    root = _write_release(
        tmp_path / "release", "iemocap", IEMOCAP_IDS, labels=_inconsistent_labels(IEMOCAP_IDS)
    )
    with pytest.raises(
        DataError,
        match=_names("'Ses01F_impro01_F000'", "fold '1'", "fold '2'", "target/1/val_label.npy",
                     "target/2/trn_label.npy"),
    ):
        mmin_features.read_release(root, MODALITIES)


def test_h5_key_removed_while_reading(tmp_path):
    root = _write_release(tmp_path / "release", "msp", MSP_IDS)
    release = mmin_features.read_release(root, MODALITIES)
    _delete_h5_key(root, FILES["acoustic"], "MSP-IMPROV-S02A-F02-P-FM05")

    message = _names("'MSP-IMPROV-S02A-F02-P-FM05'", "A/comparE.h5", "no entry")
    with pytest.raises(DataError, match=message):
        _import(release, str(tmp_path / "out"))

    assert os.listdir(tmp_path) == ["release"]


def test_label_out_of_range_is_rejected_by_the_writer(tmp_path):
    labels = _labels(MSP_IDS)
    labels["MSP-IMPROV-S01A-F01-P-FM01"] = 7
    root = _write_release(tmp_path / "release", "msp", MSP_IDS, labels=labels)
    message = _names("'MSP-IMPROV-S01A-F01-P-FM01'", "outside [0, 4)", "target/1/val_label.npy")
    with pytest.raises(DataError, match=message):
        _import(mmin_features.read_release(root, MODALITIES), str(tmp_path / "out"))
    assert os.listdir(tmp_path) == ["release"]


def _replace(root, relative, array):
    np.save(os.path.join(root, "target", relative), array)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda root: os.remove(os.path.join(root, "target/2/tst_int2name.npy")),
         ["target/2/tst_int2name.npy", "not found"]),
        (lambda root: open(os.path.join(root, "target/1/val_label.npy"), "wb").close(),
         ["target/1/val_label.npy", "Cannot read"]),
        (lambda root: _replace(root, "1/val_label.npy", np.array([0])),
         ["target/1/val_int2name.npy lists 2 utterances", "target/1/val_label.npy has 1 labels"]),
        (lambda root: _replace(root, "1/val_label.npy", np.array([0.5, 1.0])),
         ["target/1/val_label.npy", "non-negative integers"]),
        (lambda root: _replace(root, "1/val_label.npy", np.zeros((2, 4))),
         ["target/1/val_label.npy", "rows [0, 1] have no class"]),
        (lambda root: _replace(root, "1/val_label.npy", np.zeros((2, 2, 2))),
         ["target/1/val_label.npy", "(2, 2, 2)"]),
        (lambda root: _replace(root, "1/val_label.npy", np.array(["a", "b"])),
         ["target/1/val_label.npy", "must be numeric"]),
        (lambda root: _replace(root, "1/val_int2name.npy", np.array([1, 2])),
         ["target/1/val_int2name.npy", "strings or bytes"]),
        (lambda root: _replace(root, "1/val_int2name.npy", np.array([b"\xff", b"a"])),
         ["target/1/val_int2name.npy", "not UTF-8"]),
        (lambda root: _replace(root, "1/val_int2name.npy", np.array(["x", "x"])),
         ["'x'", "twice", "target/1/val_int2name.npy"]),
    ],
)
def test_malformed_target_files(tmp_path, change, message):
    root = _write_release(tmp_path / "release", "iemocap", IEMOCAP_IDS)
    change(root)
    with pytest.raises(DataError, match=_names(*message)):
        mmin_features.read_release(root, MODALITIES)


def test_missing_directories_and_unreadable_h5(tmp_path):
    with pytest.raises(DataError, match=_names(str(tmp_path / "absent"), "not found")):
        mmin_features.read_release(str(tmp_path / "absent"), MODALITIES)
    os.makedirs(tmp_path / "no_target")
    with pytest.raises(DataError, match=_names("no_target", "no target/ directory")):
        mmin_features.read_release(str(tmp_path / "no_target"), MODALITIES)
    os.makedirs(tmp_path / "no_folds" / "target")
    with pytest.raises(DataError, match=_names("no_folds", "holds no fold directories")):
        mmin_features.read_release(str(tmp_path / "no_folds"), MODALITIES)
    root = _write_release(tmp_path / "release", "iemocap", IEMOCAP_IDS)
    with open(os.path.join(root, FILES["visual"]), "wb") as f:
        f.write(b"not hdf5")
    with pytest.raises(DataError, match=_names("V/denseface.h5", "Cannot open")):
        mmin_features.read_release(root, MODALITIES)


def test_release_without_utterances(tmp_path):
    splits = {"train": [], "validation": [], "test": []}
    root = _write_release(tmp_path / "release", "msp", MSP_IDS, folds={"1": splits})
    with pytest.raises(DataError, match=_names("release/target", "list no utterances")):
        mmin_features.read_release(root, MODALITIES)


def test_boolean_one_hot_labels(tmp_path):
    root = _write_release(tmp_path / "release", "iemocap", IEMOCAP_IDS)
    labels = np.load(os.path.join(root, "target/1/trn_label.npy"))
    np.save(os.path.join(root, "target/1/trn_label.npy"), labels.astype(bool))
    release = mmin_features.read_release(root, MODALITIES)
    assert release.labels == _labels(IEMOCAP_IDS)


def test_configuration_errors(tmp_path):
    root = _write_release(tmp_path / "release", "iemocap", IEMOCAP_IDS)
    with pytest.raises(ValueError, match=r"names modalities \['audio'\] that are not configured"):
        mmin_features.read_release(root, MODALITIES, feature_files={"audio": "A/x.h5"})
    depth = ModalitySpec("depth", "d", 2, EncoderKind.LSTM)
    with pytest.raises(ValueError, match=r"No release feature file for modalities \['depth'\]"):
        mmin_features.read_release(root, MODALITIES + (depth,))
