"""`python -m mmin_tf.prepare --source=iemocap|msp_improv` on fake releases, as subprocesses."""

import csv
import glob
import os
import shutil
import subprocess
import sys

import soundfile

from mmin_tf.corpora import iemocap
from mmin_tf.data import format as format_lib
from tests import media_fixtures
from tests.corpora import test_iemocap, test_msp_improv

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IN_MEMORY = ("--direct_running_mode=in_memory", "--direct_num_workers=1")


def _prepare(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [REPO_ROOT, env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "mmin_tf.prepare", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def _iemocap_with_media(root):
    """The IEMOCAP test release with real media: a 0.5 s tone per sentence wav and, per dialog,
    a 15 s video at 2 fps whose right half shows a face (the left half: none)."""
    release = test_iemocap.write_release(root)
    for wav in glob.glob(os.path.join(release, "Session*", "sentences", "wav", "*", "*.wav")):
        media_fixtures.write_tone(wav, seconds=0.5)
    frame = media_fixtures.side_by_side(media_fixtures.blank_frame(), media_fixtures.face_image())
    video = media_fixtures.write_video(os.path.join(root, "dialog.avi"), [frame] * 30, fps=2)
    for avi in glob.glob(os.path.join(release, "Session*", "dialog", "avi", "DivX", "*.avi")):
        shutil.copy(video, avi)
    return release


def test_iemocap_from_the_raw_release_to_a_dataset(tmp_path, bert_preset, face_model):
    release = _iemocap_with_media(str(tmp_path / "IEMOCAP_full_release"))
    out = tmp_path / "data"
    result = _prepare("--source=iemocap", f"--corpus_dir={release}", "--sessions=1,2", f"--out={out}",
                      f"--bert_preset={bert_preset}", f"--face_model={face_model}", *IN_MEMORY)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "IEMOCAP: kept 9 utterances" in result.stderr and "dropped by label: fru 1, xxx 1" in result.stderr
    info = format_lib.load_info(str(out))
    assert info.label_names == iemocap.LABEL_NAMES and info.num_utterances == 9
    # The release's utterance without a transcript line has no text; the left actor no face.
    assert info.presence == {"acoustic": 9, "visual": 5, "text": 8}
    assert [spec.name for spec in info.modalities] == ["acoustic", "visual", "text"]
    assert len(info.fold_names) == 4  # 2 sessions x 2 speakers
    # The faces are on the right: the utterances of the actor shown on the left have none.
    # The actor who wore the markers (the dialog's letter) is shown left, where there is no face.
    ids = _ids(out)
    left = [utterance for utterance in ids if utterance[5] == utterance.split("_")[-1][0]]
    assert left == ["Ses01F_impro01_F000", "Ses01M_script01_1_M000", "Ses02F_script01_1b_F000", "Ses02M_impro05a_M000"]
    assert sorted(info.extraction["no_face_utterances"]) == sorted(left)
    assert info.source["importer"] == "iemocap" and "kept 9 utterances" in info.source["corpus_counts"]


def _ids(data_dir):
    from mmin_tf.data import pipeline

    info = format_lib.load_info(str(data_dir))
    return [example["utterance_id"].decode() for example in pipeline.read_split(str(data_dir), info).as_numpy_iterator()]


def test_iemocap_without_video_needs_no_face_model_and_no_avi(tmp_path, bert_preset):
    release = _iemocap_with_media(str(tmp_path / "release"))
    for avi in glob.glob(os.path.join(release, "Session*", "dialog", "avi", "DivX", "*.avi")):
        os.remove(avi)
    out = tmp_path / "data"
    result = _prepare("--source=iemocap", f"--corpus_dir={release}", "--sessions=1,2", f"--out={out}",
                      "--extract_modalities=acoustic,text", f"--bert_preset={bert_preset}", *IN_MEMORY)
    assert result.returncode == 0, result.stderr[-3000:]
    info = format_lib.load_info(str(out))
    assert [spec.name for spec in info.modalities] == ["acoustic", "text"] and info.num_utterances == 9


def test_media_manifest_only(tmp_path):
    release = test_iemocap.write_release(str(tmp_path / "release"))
    out = tmp_path / "iemocap_media.csv"
    result = _prepare("--source=iemocap", f"--corpus_dir={release}", "--sessions=1,2", f"--out={out}",
                      "--media_manifest_only")
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 9 and rows[0]["utterance_id"] == "Ses01F_impro01_F000"
    assert rows[0]["audio"].endswith("Ses01F_impro01_F000.wav") and rows[0]["video_start"] == "6.2901"
    assert rows[0]["face_region"] == "0:0:0.5:1" and rows[1]["face_region"] == "0.5:0:1:1"
    again = _prepare("--source=iemocap", f"--corpus_dir={release}", "--sessions=1,2", f"--out={out}",
                     "--media_manifest_only")
    assert again.returncode == 1 and "already exists" in again.stderr


def test_msp_improv_media_manifest_only(tmp_path):
    release = test_msp_improv.write_release(tmp_path / "MSP-IMPROV")
    out = tmp_path / "msp.csv"
    result = _prepare("--source=msp_improv", f"--corpus_dir={release}", "--sessions=1,2", f"--out={out}",
                      "--media_manifest_only")
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["utterance_id"] for row in rows] == [
        "MSP-IMPROV-S01A-F01-S-FM01", "MSP-IMPROV-S01A-F01-S-MF02", "MSP-IMPROV-S01H-M01-S-MF01",
        "MSP-IMPROV-S02S-F02-S-FM01", "MSP-IMPROV-S02N-M02-S-MF01"]


def test_a_release_error_names_the_file(tmp_path):
    release = test_iemocap.write_release(str(tmp_path / "release"))
    result = _prepare("--source=iemocap", f"--corpus_dir={release}", f"--out={tmp_path / 'x.csv'}",
                      "--media_manifest_only")
    assert result.returncode == 1
    assert "mmin_tf.prepare: error: IEMOCAP session directory" in result.stderr and "Session3 not found" in result.stderr
    assert not (tmp_path / "x.csv").exists()


def test_msp_improv_from_the_raw_release_to_a_dataset(tmp_path, bert_preset, face_model):
    release = test_msp_improv.write_release(tmp_path / "MSP-IMPROV")
    for wav in glob.glob(os.path.join(release, "Audio", "**", "*.wav"), recursive=True):
        media_fixtures.write_tone(wav, seconds=soundfile.info(wav).duration)  # the durations select
    video = media_fixtures.write_video(str(tmp_path / "face.avi"), [media_fixtures.face_image()] * 6, fps=2)
    for avi in glob.glob(os.path.join(release, "Video", "**", "*.avi"), recursive=True):
        shutil.copy(video, avi)
    out = tmp_path / "data"
    result = _prepare("--source=msp_improv", f"--corpus_dir={release}", "--sessions=1,2", f"--out={out}",
                      f"--bert_preset={bert_preset}", f"--face_model={face_model}", *IN_MEMORY)
    assert result.returncode == 0, result.stderr[-3000:]
    info = format_lib.load_info(str(out))
    assert sorted(_ids(out)) == sorted([
        "MSP-IMPROV-S01A-F01-S-FM01", "MSP-IMPROV-S01A-F01-S-MF02", "MSP-IMPROV-S01H-M01-S-MF01",
        "MSP-IMPROV-S02S-F02-S-FM01", "MSP-IMPROV-S02N-M02-S-MF01"])
    assert [spec.name for spec in info.modalities] == ["acoustic", "visual", "text"]
    assert info.presence["acoustic"] == 5 and info.presence["visual"] == 5
    assert info.source["importer"] == "msp_improv"
