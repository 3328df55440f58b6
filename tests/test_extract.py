"""`python -m mmin_tf.extract` as a subprocess: media manifest -> dataset, Beam options passed through."""

import csv
import json
import os
import subprocess
import sys

from mmin_tf.data import format as format_lib
from tests import media_fixtures

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _extract(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO_ROOT, env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "mmin_tf.extract", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def _manifest(directory, face_video, transcript_file="hello.txt"):
    """8 utterances of 2 sessions x 2 speakers: wavs, transcripts (one from a .txt file), the video."""
    path = os.path.join(directory, "media.csv")
    with open(os.path.join(directory, "hello.txt"), "w", encoding="utf-8") as f:
        f.write("Why, it was so good!\n")
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["utterance_id", "speaker", "group", "label", "audio", "transcript", "video",
                         "video_start", "face_region"])
        for index in range(8):
            group = f"Ses0{index // 4 + 1}"
            speaker = group + "FM"[index // 2 % 2]
            media_fixtures.write_tone(os.path.join(directory, f"u{index}.wav"), seconds=0.6)
            writer.writerow([f"{speaker}_{index}", speaker, group, ("neutral", "anger")[index % 2], f"u{index}.wav",
                             transcript_file if index == 3 else "Excuse me.", face_video, "0.2", "0.5:0:1:1"])
    return path


def test_the_command_writes_a_dataset_with_two_workers(tmp_path, bert_preset, face_model, face_video):
    manifest = _manifest(str(tmp_path), face_video)
    out = tmp_path / "data"
    result = _extract(f"--media_manifest={manifest}", f"--out={out}", f"--bert_preset={bert_preset}",
                      f"--face_model={face_model}", "--utterances_per_shard=3", "--direct_num_workers=2")
    assert result.returncode == 0, result.stderr[-3000:]
    info = format_lib.load_info(str(out))
    assert info.num_utterances == 8 and len(info.shards) == 3
    assert info.label_names == ("anger", "neutral")  # sorted manifest labels
    assert "Label order (sorted manifest labels): ['anger', 'neutral']" in result.stderr
    assert [spec.name for spec in info.modalities] == ["acoustic", "visual", "text"]
    assert info.length_statistics["visual"].maximum == 3  # the face frames from 0.2 s on
    with open(out / "dataset.json") as f:
        stored = json.load(f)
    assert stored["source"]["importer"] == "extract" and stored["source"]["media_manifest"] == manifest
    assert stored["extraction"]["models"]["visual"]["name"] == "face.keras"


def test_bad_input_exits_1_with_one_line_and_leaves_nothing(tmp_path, bert_preset, face_model, face_video):
    manifest = _manifest(str(tmp_path), face_video, transcript_file="missing.txt")
    out = tmp_path / "data"
    result = _extract(f"--media_manifest={manifest}", f"--out={out}", f"--bert_preset={bert_preset}",
                      f"--face_model={face_model}")
    assert result.returncode == 1
    assert f"mmin_tf.extract: error: Media manifest {manifest} line 5, utterance 'Ses01M_3': transcript file" in result.stderr
    assert "missing.txt not found" in result.stderr
    assert not out.exists() and not [name for name in os.listdir(tmp_path) if name.startswith(".data")]
