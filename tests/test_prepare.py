"""End-to-end tests of `python -m mmin_tf.prepare`, run as subprocesses on tiny corpora."""

import csv
import json
import os
import subprocess
import sys

import h5py
import numpy as np

from mmin_tf.data import format as format_lib

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_MODALITIES = "acoustic:a:3:lstm,visual:v:4:lstm,text:t:5:text_cnn"
DIMS = {"acoustic": 3, "visual": 4, "text": 5}
LABEL_NAMES = ["happy", "anger", "sadness", "neutral"]


def _prepare(*args):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO_ROOT, env.get("PYTHONPATH")]))
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return subprocess.run(
        [sys.executable, "-m", "mmin_tf.prepare", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def _load_json(path):
    with open(path) as f:
        return json.load(f)


def _write_manifest(directory, poison=None):
    """Two sessions x two speakers x two utterances; `poison` = utterance id given a NaN frame."""
    rng = np.random.default_rng(0)
    os.makedirs(directory)
    path = os.path.join(directory, "corpus.csv")
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["utterance_id", "speaker", "group", "label", *DIMS])
        for index in range(8):
            group = f"Ses0{1 + index % 2}"
            speaker = group + "FM"[index // 2 % 2]
            utterance_id = f"{speaker}_{index}"
            cells = []
            for name, dim in DIMS.items():
                array = rng.normal(size=(2, dim)).astype(np.float32)
                if utterance_id == poison and name == "visual":
                    array[1, 0] = np.nan
                np.save(os.path.join(directory, f"{utterance_id}.{name}.npy"), array)
                cells.append(f"{utterance_id}.{name}.npy")
            writer.writerow([utterance_id, speaker, group, LABEL_NAMES[index % 4], *cells])
    return path


def test_synthetic(tmp_path):
    out_dir = tmp_path / "synthetic"
    result = _prepare(
        "--source=synthetic", "--num_utterances=40", "--mean_lengths=acoustic:5,visual:4,text:6",
        f"--out={out_dir}",
    )
    assert result.returncode == 0, result.stderr
    info = _load_json(out_dir / format_lib.INFO_FILENAME)
    assert info["num_utterances"] == 40
    assert info["label_names"] == LABEL_NAMES
    assert list(info["fold_counts"]) == [str(fold) for fold in range(1, 11)]
    assert [m["feature_dim"] for m in info["modalities"]] == [130, 342, 1024]
    assert info["source"]["importer"] == "synthetic"
    folds = _load_json(out_dir / format_lib.FOLDS_FILENAME)
    assert len(folds) == 10
    assert os.listdir(tmp_path) == ["synthetic"]


def test_synthetic_length_spreads(tmp_path):
    def lengths(name, *spreads):
        out_dir = tmp_path / name
        result = _prepare(
            "--source=synthetic", "--num_utterances=40", f"--modalities={TINY_MODALITIES}",
            "--mean_lengths=acoustic:40,visual:20,text:10", f"--out={out_dir}", *spreads,
        )
        assert result.returncode == 0, result.stderr
        info = _load_json(out_dir / format_lib.INFO_FILENAME)
        return info["source"], info["length_statistics"]["acoustic"]

    source, fixed = lengths("fixed", "--length_spread=0")
    assert fixed["min"] == fixed["max"] == 40
    assert (source["length_spread"], source["duration_spread"]) == (0.0, 0.0)
    source, shared = lengths("shared", "--length_spread=0", "--duration_spread=0.5")
    assert shared["min"] < 40 < shared["max"]
    assert source["duration_spread"] == 0.5


def test_manifest(tmp_path):
    manifest = _write_manifest(tmp_path / "corpus")
    out_dir = tmp_path / "out"
    result = _prepare(
        "--source=manifest", f"--manifest={manifest}", f"--modalities={TINY_MODALITIES}",
        f"--label_names={','.join(LABEL_NAMES)}", f"--out={out_dir}", "--name=tiny",
    )
    assert result.returncode == 0, result.stderr
    info = _load_json(out_dir / format_lib.INFO_FILENAME)
    assert info["name"] == "tiny"
    assert info["num_utterances"] == 8
    assert [m["feature_dim"] for m in info["modalities"]] == [3, 4, 5]
    assert info["source"]["manifest"] == str(manifest)
    assert list(_load_json(out_dir / format_lib.FOLDS_FILENAME)) == ["1", "2", "3", "4"]


def test_manifest_labels_default_to_its_sorted_labels(tmp_path):
    manifest = _write_manifest(tmp_path / "corpus")
    out_dir = tmp_path / "out"
    result = _prepare("--source=manifest", f"--manifest={manifest}", f"--modalities={TINY_MODALITIES}",
                      f"--out={out_dir}")
    assert result.returncode == 0, result.stderr
    assert _load_json(out_dir / format_lib.INFO_FILENAME)["label_names"] == sorted(LABEL_NAMES)
    assert "Label order (sorted manifest labels): ['anger', 'happy', 'neutral', 'sadness']" in result.stderr


def test_bad_manifest_exits_non_zero_naming_utterance_and_file(tmp_path):
    manifest = _write_manifest(tmp_path / "corpus", poison="Ses02M_3")
    result = _prepare(
        "--source=manifest", f"--manifest={manifest}", f"--modalities={TINY_MODALITIES}",
        f"--label_names={','.join(LABEL_NAMES)}", f"--out={tmp_path / 'out'}",
    )
    assert result.returncode != 0
    assert "'Ses02M_3'" in result.stderr
    assert "corpus.csv line 5" in result.stderr
    assert "visual features contain NaN or Inf" in result.stderr
    assert "Traceback" not in result.stderr
    assert os.listdir(tmp_path) == ["corpus"]


def test_mmin_features_msp_layout(tmp_path):
    root = tmp_path / "release"
    ids = [f"MSP-IMPROV-S0{session}A-{sex}0{session}-P-FM0{index}"
           for session in (1, 2) for sex in "FM" for index in (1, 2)]
    rng = np.random.default_rng(0)
    files = {"acoustic": "A/comparE_raw.h5", "visual": "V/denseface.h5", "text": "L/bert_large.h5"}
    for name, relative in files.items():
        os.makedirs(os.path.dirname(root / relative), exist_ok=True)
        with h5py.File(root / relative, "w") as f:
            for utterance_id in ids:
                f[utterance_id] = rng.normal(size=(3, DIMS[name])).astype(np.float32)
    splits = {
        "1": (ids[4:], ids[0:2], ids[2:4]),
        "2": (ids[:4], ids[4:6], ids[6:8]),
    }
    for fold, split_ids in splits.items():
        os.makedirs(root / "target" / fold)
        for prefix, names in zip(("trn", "val", "tst"), split_ids):
            np.save(root / "target" / fold / f"{prefix}_int2name.npy", np.array(names))
            np.save(root / "target" / fold / f"{prefix}_label.npy",
                    np.array([ids.index(name) % 4 for name in names]))
    out_dir = tmp_path / "out"

    result = _prepare(
        "--source=mmin_features", f"--features_dir={root}", f"--modalities={TINY_MODALITIES}",
        "--feature_files=acoustic:A/comparE_raw.h5", f"--out={out_dir}",
    )

    assert result.returncode == 0, result.stderr
    info = _load_json(out_dir / format_lib.INFO_FILENAME)
    assert info["label_names"] == ["anger", "happy", "neutral", "sadness"]
    assert info["num_utterances"] == 8
    assert _load_json(out_dir / format_lib.FOLDS_FILENAME) == {
        fold: {"train": train, "validation": validation, "test": test}
        for fold, (train, validation, test) in splits.items()
    }
