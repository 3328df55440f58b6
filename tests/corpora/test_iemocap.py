"""The IEMOCAP reader on a fake `IEMOCAP_full_release` tree with the release's names and formats."""

import logging
import os
import shutil

import numpy as np
import pytest
import soundfile

from mmin_tf.corpora import iemocap, reading
from mmin_tf.corpora.iemocap import IemocapAudio, IemocapSettings, read_iemocap
from mmin_tf.data.format import DataError
from mmin_tf.data.media_manifest import FaceRegion, read_media_manifest, write_media_manifest
from mmin_tf.data.synthetic import IEMOCAP_LABEL_NAMES

SETTINGS = IemocapSettings(sessions=(1, 2))

# dialog -> [(utterance suffix, label, start, end, transcript or None)]
DIALOGS = {
    "Ses01F_impro01": [
        ("F000", "neu", 6.2901, 8.2357, "Excuse me."),
        ("M000", "exc", 8.5, 10.0, "Do you have your forms?"),
        ("F001", "fru", 10.5, 12.0, "Yeah."),
        ("M001", "ang", 12.5, 14.25, "No, I need another one."),
    ],
    "Ses01M_script01_1": [
        ("F000", "sad", 1.0, 2.5, "It's over."),
        ("M000", "hap", 3.0, 4.0, None),  # no transcript line: counted, record without text
        ("M001", "xxx", 4.5, 5.0, "What?"),
    ],
    "Ses02F_script01_1b": [
        ("F000", "neu", 0.5, 1.5, "Good morning."),
        ("M000", "sad", 2.0, 3.0, "I miss him."),
    ],
    "Ses02M_impro05a": [
        ("M000", "hap", 1.0, 2.0, "We won!"),
        ("F000", "ang", 2.5, 4.0, "You lied to me."),
    ],
}
# Extra transcript lines of the release's quirks: an unevaluated XX turn and a line without an id.
EXTRA_TRANSCRIPT_LINES = {"Ses02M_impro05a": ["Ses02M_impro05a_MXX0 [004.1000-004.9000]: Hmm.", "M: [LAUGHTER]"]}


def _wav(path, seconds=0.05, channels=1):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    soundfile.write(path, np.zeros((int(16000 * seconds), channels), np.float32), 16000)


def _evaluation_text(dialog, turns):
    lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
    for suffix, label, start, end, _ in turns:
        lines += [
            f"[{start:.4f} - {end:.4f}]\t{dialog}_{suffix}\t{label}\t[2.5000, 3.0000, 3.5000]",
            "C-E1:\tNeutral state;\t()",
            "C-E3:\tNeutral state;\t()",
            "A-E3:\tval 3; act 2; dom  2;\t()",
            "",
        ]
    return "\n".join(lines) + "\n"


def _transcript_text(dialog, turns):
    lines = [f"{dialog}_{suffix} [{start:08.4f}-{end:08.4f}]: {text}"
             for suffix, _, start, end, text in turns if text is not None]
    return "\n".join(lines + EXTRA_TRANSCRIPT_LINES.get(dialog, [])) + "\n"


def write_release(root, dialogs=DIALOGS):
    """Writes a tiny release: evaluation, transcription, dialog wav (2 channels), avi placeholder
    (the reader only checks that it exists) and one mono sentence wav per utterance."""
    for dialog, turns in dialogs.items():
        session_dir = os.path.join(root, f"Session{int(dialog[3:5])}")
        dialog_dir = os.path.join(session_dir, "dialog")
        for sub in ("EmoEvaluation", "transcriptions", os.path.join("avi", "DivX")):
            os.makedirs(os.path.join(dialog_dir, sub), exist_ok=True)
        with open(os.path.join(dialog_dir, "EmoEvaluation", f"{dialog}.txt"), "w") as f:
            f.write(_evaluation_text(dialog, turns))
        with open(os.path.join(dialog_dir, "transcriptions", f"{dialog}.txt"), "w") as f:
            f.write(_transcript_text(dialog, turns))
        _wav(os.path.join(dialog_dir, "wav", f"{dialog}.wav"), channels=2)
        open(os.path.join(dialog_dir, "avi", "DivX", f"{dialog}.avi"), "wb").close()
        for suffix, *_ in turns:
            _wav(os.path.join(session_dir, "sentences", "wav", dialog, f"{dialog}_{suffix}.wav"))
        # Entries of EmoEvaluation/ that are not dialog files (rule 1).
        os.makedirs(os.path.join(dialog_dir, "EmoEvaluation", "Categorical"), exist_ok=True)
        with open(os.path.join(dialog_dir, "EmoEvaluation", "Categorical", f"{dialog}_e1_cat.txt"), "w") as f:
            f.write("not a dialog file\n")
        with open(os.path.join(dialog_dir, "EmoEvaluation", f"._{dialog}.txt"), "wb") as f:
            f.write(b"\x00\x05\x16\x07 AppleDouble")
    return str(root)


@pytest.fixture()
def release(tmp_path):
    return write_release(tmp_path / "IEMOCAP_full_release")


def _path(release, *parts):
    return os.path.join(release, *parts)


def _by_id(result):
    return {record.utterance_id: record for record in result.records}


def test_records_labels_speakers_groups_and_spans(release):
    result = read_iemocap(release, SETTINGS)
    ids = [record.utterance_id for record in result.records]
    assert ids == [
        "Ses01F_impro01_F000", "Ses01F_impro01_M000", "Ses01F_impro01_M001",
        "Ses01M_script01_1_F000", "Ses01M_script01_1_M000",
        "Ses02F_script01_1b_F000", "Ses02F_script01_1b_M000",
        "Ses02M_impro05a_M000", "Ses02M_impro05a_F000",
    ]
    records = _by_id(result)
    assert {i: r.label for i, r in records.items()} == {
        "Ses01F_impro01_F000": "neutral", "Ses01F_impro01_M000": "happy", "Ses01F_impro01_M001": "anger",
        "Ses01M_script01_1_F000": "sadness", "Ses01M_script01_1_M000": "happy",
        "Ses02F_script01_1b_F000": "neutral", "Ses02F_script01_1b_M000": "sadness",
        "Ses02M_impro05a_M000": "happy", "Ses02M_impro05a_F000": "anger",
    }
    # The speaker is the speaking actor (the id's last part), not the dialog's letter.
    assert records["Ses01F_impro01_M000"].speaker == "Ses01M"
    assert records["Ses01M_script01_1_F000"].speaker == "Ses01F"
    assert records["Ses02M_impro05a_M000"].speaker == "Ses02M"
    assert {r.group for r in records.values()} == {"Ses01", "Ses02"}
    assert records["Ses02F_script01_1b_M000"].group == "Ses02"
    first = records["Ses01F_impro01_F000"]
    # Default: the sentence wav, read whole, and the dialog avi with the utterance's span.
    assert (first.start, first.end) == (None, None)
    assert (first.video_start, first.video_end) == first.video_span == (6.2901, 8.2357)
    assert records["Ses01F_impro01_M001"].video_span == (12.5, 14.25)
    assert first.audio == _path(release, "Session1", "sentences", "wav", "Ses01F_impro01", "Ses01F_impro01_F000.wav")
    assert first.video == _path(release, "Session1", "dialog", "avi", "DivX", "Ses01F_impro01.avi")
    assert first.transcript == "Excuse me."
    assert first.source.endswith(os.path.join("EmoEvaluation", "Ses01F_impro01.txt") + " line 3")
    assert records["Ses01M_script01_1_M000"].transcript is None


def test_records_round_trip_through_the_media_manifest(release, tmp_path):
    records = read_iemocap(release, SETTINGS).records
    path = str(tmp_path / "iemocap_media.csv")
    assert write_media_manifest(path, records) == 9
    read_back = list(read_media_manifest(path))
    fields = ("utterance_id", "speaker", "group", "label", "audio", "transcript", "video", "start", "end",
              "video_start", "video_end", "face_region")
    assert [[getattr(r, f) for f in fields] for r in read_back] == [[getattr(r, f) for f in fields] for r in records]


def test_label_names_match_the_dataset_label_order():
    assert iemocap.LABEL_NAMES == IEMOCAP_LABEL_NAMES
    assert sum(iemocap.PAPER_COUNTS.values()) == 5531 == sum(iemocap.SESSION_COUNTS.values())


def test_counts_are_returned_and_logged(release, caplog):
    with caplog.at_level(logging.INFO, logger="absl"):
        counts = read_iemocap(release, SETTINGS).counts
    assert counts.kept_per_label == {"happy": 3, "anger": 2, "sadness": 2, "neutral": 2}
    assert list(counts.kept_per_label) == list(iemocap.LABEL_NAMES)
    assert counts.kept_per_group == {"Ses01": 5, "Ses02": 4}
    assert counts.total == 9
    assert counts.dropped_per_label == {"fru": 1, "xxx": 1}
    assert counts.rule_counts == {
        iemocap.TRANSCRIPT_LINES_WITHOUT_ID: 1,
        iemocap.UNEVALUATED_TRANSCRIPT_TURNS: 1,
        iemocap.WITHOUT_TRANSCRIPT: 1,
    }
    log = caplog.text
    assert "IEMOCAP: kept 9 utterances" in log
    assert "per class: happy 3, anger 2, sadness 2, neutral 2" in log
    assert "per group: Ses01 5, Ses02 4" in log
    assert "dropped by label: fru 1, xxx 1" in log
    assert "unevaluated_transcript_turns 1" in log


def test_face_region_is_the_speaking_actors_side(release):
    records = _by_id(read_iemocap(release, SETTINGS))
    # The actor who wore the markers (the dialog's letter) is on the left.
    assert records["Ses01F_impro01_F000"].face_region == iemocap.LEFT_HALF
    assert records["Ses01F_impro01_M000"].face_region == iemocap.RIGHT_HALF
    assert records["Ses01M_script01_1_M000"].face_region == iemocap.LEFT_HALF
    assert records["Ses01M_script01_1_F000"].face_region == iemocap.RIGHT_HALF

    top = FaceRegion(0.0, 0.0, 1.0, 0.5)
    bottom = FaceRegion(0.0, 0.5, 1.0, 1.0)
    custom = IemocapSettings(sessions=(1, 2), mocap_actor_region=top, other_actor_region=bottom)
    records = _by_id(read_iemocap(release, custom))
    assert records["Ses02M_impro05a_M000"].face_region == top
    assert records["Ses02M_impro05a_F000"].face_region == bottom


def test_dialog_audio_takes_the_span_for_audio_and_video(release):
    record = _by_id(read_iemocap(release, IemocapSettings(sessions=(1, 2), audio=IemocapAudio.DIALOG)))[
        "Ses01F_impro01_F000"]
    assert record.audio == _path(release, "Session1", "dialog", "wav", "Ses01F_impro01.wav")
    assert (record.start, record.end) == record.video_span == (6.2901, 8.2357)
    assert (record.video_start, record.video_end) == (None, None)


def test_sentence_audio_without_video_has_no_span(release):
    settings = IemocapSettings(sessions=(1, 2), audio=IemocapAudio.SENTENCE, include_video=False)
    record = _by_id(read_iemocap(release, settings))["Ses01F_impro01_M000"]
    assert record.audio == _path(release, "Session1", "sentences", "wav", "Ses01F_impro01", "Ses01F_impro01_M000.wav")
    assert (record.video, record.face_region, record.start, record.end) == (None, None, None, None)
    assert record.transcript == "Do you have your forms?"


def test_transcript_only_records_skip_media_checks(release):
    shutil.rmtree(_path(release, "Session1", "dialog", "wav"))
    shutil.rmtree(_path(release, "Session1", "dialog", "avi"))
    with open(_path(release, "Session1", "dialog", "transcriptions", "Ses01M_script01_1.txt"), "a") as f:
        f.write("Ses01M_script01_1_M000 [003.0000-004.0000]: Great news.\n")
    settings = IemocapSettings(sessions=(1,), audio=None, include_video=False)
    records = read_iemocap(release, settings).records
    assert [r.transcript for r in records] == [
        "Excuse me.", "Do you have your forms?", "No, I need another one.", "It's over.", "Great news."]
    assert all(r.audio is None and r.video is None and r.start is None for r in records)


def test_transcript_only_utterance_without_transcript_has_nothing_to_extract(release):
    settings = IemocapSettings(sessions=(1,), audio=None, include_video=False)
    with pytest.raises(DataError, match=r"'Ses01M_script01_1_M000' .*no audio, transcript or video"):
        read_iemocap(release, settings)


def test_full_release_counts_are_compared_with_the_paper(tmp_path, caplog):
    dialogs = {f"Ses0{n}F_impro01": [("F000", "neu", 1.0, 2.0, "Hi.")] for n in range(1, 6)}
    release = write_release(tmp_path / "full", dialogs)
    with caplog.at_level(logging.INFO, logger="absl"):
        counts = read_iemocap(release).counts
    assert counts.kept_per_group == {f"Ses0{n}": 1 for n in range(1, 6)}
    paper = "{'happy': 1636, 'anger': 1103, 'sadness': 1084, 'neutral': 1708}"
    assert f"class counts differ from the paper's {paper}" in caplog.text
    assert "group counts differ from the paper's {'Ses01': 1085, 'Ses02': 1023" in caplog.text


def test_counts_equal_to_the_paper_are_logged_as_matching(caplog):
    counts = reading.ReadCounts(corpus=iemocap.CORPUS, kept_per_label=dict(iemocap.PAPER_COUNTS),
                                kept_per_group=dict(iemocap.SESSION_COUNTS), dropped_per_label={}, rule_counts={})
    with caplog.at_level(logging.INFO, logger="absl"):
        reading.log_counts(counts, iemocap.PAPER_COUNTS, iemocap.SESSION_COUNTS)
    assert "IEMOCAP: the class counts match the paper's (5531 utterances)" in caplog.text
    assert "IEMOCAP: the group counts match the paper's (5531 utterances)" in caplog.text
    assert "differ" not in caplog.text


def test_missing_session_directory(release):
    with pytest.raises(DataError, match=r"session directory .*Session3 not found"):
        read_iemocap(release)  # the default settings read sessions 1..5


def test_missing_release_directory(tmp_path):
    with pytest.raises(DataError, match=r"release directory .*nowhere not found"):
        read_iemocap(str(tmp_path / "nowhere"), SETTINGS)


def _rewrite(path, old, new):
    with open(path) as f:
        text = f.read()
    assert old in text
    with open(path, "w") as f:
        f.write(text.replace(old, new))


def test_evaluation_line_that_does_not_parse(release):
    path = _path(release, "Session1", "dialog", "EmoEvaluation", "Ses01F_impro01.txt")
    _rewrite(path, "\tneu\t[2.5000, 3.0000, 3.5000]", "\tneu")
    with pytest.raises(DataError, match=r"Ses01F_impro01\.txt line 3 does not parse"):
        read_iemocap(release, SETTINGS)


def test_evaluation_line_of_another_dialog(release):
    path = _path(release, "Session1", "dialog", "EmoEvaluation", "Ses01F_impro01.txt")
    _rewrite(path, "Ses01F_impro01_M000", "Ses01F_impro02_M000")
    match = r"line 8: utterance id 'Ses01F_impro02_M000' is not .* of dialog 'Ses01F_impro01'"
    with pytest.raises(DataError, match=match):
        read_iemocap(release, SETTINGS)


def test_repeated_utterance(release):
    path = _path(release, "Session1", "dialog", "EmoEvaluation", "Ses01F_impro01.txt")
    _rewrite(path, "Ses01F_impro01_M000", "Ses01F_impro01_F000")
    with pytest.raises(DataError, match=r"line 8: utterance 'Ses01F_impro01_F000' is repeated \(first at .* line 3\)"):
        read_iemocap(release, SETTINGS)


def test_span_that_ends_before_it_starts_names_the_line(release):
    path = _path(release, "Session1", "dialog", "EmoEvaluation", "Ses01F_impro01.txt")
    _rewrite(path, "[6.2901 - 8.2357]", "[8.2357 - 6.2901]")
    with pytest.raises(DataError, match=r"Ses01F_impro01_F000.*Ses01F_impro01\.txt line 3.*is not after video_start"):
        read_iemocap(release, SETTINGS)
    with pytest.raises(DataError, match=r"Ses01F_impro01_F000.*Ses01F_impro01\.txt line 3.*end 6.2901 is not after start"):
        read_iemocap(release, IemocapSettings(sessions=(1, 2), audio=IemocapAudio.DIALOG))


def test_evaluation_file_that_is_not_utf8(release):
    with open(_path(release, "Session2", "dialog", "EmoEvaluation", "Ses02M_impro05a.txt"), "ab") as f:
        f.write(b"C-E2:\tAnger \xff;\t()\n")
    with pytest.raises(DataError, match=r"Ses02M_impro05a\.txt line 13 is not UTF-8"):
        read_iemocap(release, SETTINGS)


def test_session_without_dialog_files(release):
    for name in os.listdir(_path(release, "Session2", "dialog", "EmoEvaluation")):
        if name.startswith("Ses"):
            os.remove(_path(release, "Session2", "dialog", "EmoEvaluation", name))
    with pytest.raises(DataError, match=r"Session2.*EmoEvaluation holds no dialog file Ses\*\.txt"):
        read_iemocap(release, SETTINGS)


def test_dialog_file_with_a_bad_name(release):
    with open(_path(release, "Session1", "dialog", "EmoEvaluation", "Ses01F_interview01.txt"), "w") as f:
        f.write("% header\n")
    with pytest.raises(DataError, match=r"'Ses01F_interview01' is not a dialog name"):
        read_iemocap(release, SETTINGS)


def test_dialog_file_in_the_wrong_session(release):
    shutil.copy(_path(release, "Session2", "dialog", "EmoEvaluation", "Ses02M_impro05a.txt"),
                _path(release, "Session1", "dialog", "EmoEvaluation", "Ses02M_impro05a.txt"))
    with pytest.raises(DataError, match=r"dialog 'Ses02M_impro05a' is not of session 1"):
        read_iemocap(release, SETTINGS)


def test_missing_sentence_wav(release):
    os.remove(_path(release, "Session1", "sentences", "wav", "Ses01F_impro01", "Ses01F_impro01_M001.wav"))
    settings = IemocapSettings(sessions=(1, 2), audio=IemocapAudio.SENTENCE, include_video=False)
    match = r"utterance 'Ses01F_impro01_M001' .*line 18\): wav .*Ses01F_impro01_M001\.wav not found"
    with pytest.raises(DataError, match=match):
        read_iemocap(release, settings)


def test_missing_wav_of_a_dropped_utterance_is_not_read(release):
    os.remove(_path(release, "Session1", "sentences", "wav", "Ses01F_impro01", "Ses01F_impro01_F001.wav"))  # fru
    settings = IemocapSettings(sessions=(1, 2), audio=IemocapAudio.SENTENCE, include_video=False)
    assert read_iemocap(release, settings).counts.dropped_per_label["fru"] == 1


def test_missing_dialog_wav(release):
    os.remove(_path(release, "Session2", "dialog", "wav", "Ses02M_impro05a.wav"))
    with pytest.raises(DataError, match=r"utterance 'Ses02M_impro05a_M000' .*: wav .*Ses02M_impro05a\.wav not found"):
        read_iemocap(release, IemocapSettings(sessions=(1, 2), audio=IemocapAudio.DIALOG))


def test_missing_video(release):
    os.remove(_path(release, "Session1", "dialog", "avi", "DivX", "Ses01M_script01_1.avi"))
    match = r"utterance 'Ses01M_script01_1_F000' .*: video .*Ses01M_script01_1\.avi not found"
    with pytest.raises(DataError, match=match):
        read_iemocap(release, SETTINGS)


def test_transcript_line_for_an_unknown_utterance(release):
    with open(_path(release, "Session1", "dialog", "transcriptions", "Ses01F_impro01.txt"), "a") as f:
        f.write("Ses01F_impro01_F009 [020.0000-021.0000]: Who am I?\n")
    match = r"Ses01F_impro01\.txt line 5: transcript line for an unknown utterance 'Ses01F_impro01_F009'"
    with pytest.raises(DataError, match=match):
        read_iemocap(release, SETTINGS)


def test_unevaluated_turn_of_another_dialog_is_unknown(release):
    with open(_path(release, "Session1", "dialog", "transcriptions", "Ses01F_impro01.txt"), "a") as f:
        f.write("Ses01F_impro02_FXX0 [020.0000-021.0000]: Hm.\n")
    with pytest.raises(DataError, match=r"unknown utterance 'Ses01F_impro02_FXX0'"):
        read_iemocap(release, SETTINGS)


def test_transcript_line_that_does_not_parse(release):
    path = _path(release, "Session1", "dialog", "transcriptions", "Ses01F_impro01.txt")
    _rewrite(path, "Ses01F_impro01_M000 [008.5000-010.0000]:", "Ses01F_impro01_M000 [008.5000 010.0000]")
    with pytest.raises(DataError, match=r"Ses01F_impro01\.txt line 2 does not parse"):
        read_iemocap(release, SETTINGS)


def test_second_transcript_line_for_an_utterance(release):
    with open(_path(release, "Session1", "dialog", "transcriptions", "Ses01F_impro01.txt"), "a") as f:
        f.write("Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me again.\n")
    with pytest.raises(DataError, match=r"line 5: utterance 'Ses01F_impro01_F000' has a second transcript line"):
        read_iemocap(release, SETTINGS)


def test_missing_transcription_file(release):
    os.remove(_path(release, "Session2", "dialog", "transcriptions", "Ses02F_script01_1b.txt"))
    with pytest.raises(DataError, match=r"transcription file .*Ses02F_script01_1b\.txt not found"):
        read_iemocap(release, SETTINGS)


def test_missing_evaluation_directory(release):
    shutil.rmtree(_path(release, "Session2", "dialog", "EmoEvaluation"))
    with pytest.raises(DataError, match=r"evaluation directory .*Session2.*EmoEvaluation not found"):
        read_iemocap(release, SETTINGS)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(sessions=()), ValueError, r"`sessions` must be distinct session numbers"),
    (dict(sessions=(1, 6)), ValueError, r"`sessions` must be distinct session numbers"),
    (dict(sessions=(1, 1)), ValueError, r"`sessions` must be distinct session numbers"),
    (dict(label_map=(("hap", "joy"),)), ValueError, r"maps to classes \['joy'\] that are not in label_names"),
    (dict(label_map=(("hap", "happy"), ("hap", "anger"))), ValueError, r"must map each release label once"),
    (dict(label_names=("happy", "happy")), ValueError, r"`label_names` must be distinct"),
    (dict(label_map=("hap",)), ValueError, r"must be \(release label, class name\) pairs"),
    (dict(audio="dialog"), TypeError, r"`audio` must be an IemocapAudio or None"),
    (dict(mocap_actor_region="0:0:0.5:1"), TypeError, r"`mocap_actor_region` must be a FaceRegion"),
    (dict(audio=None, include_video=False, include_transcript=False), ValueError, r"select no modality"),
])
def test_bad_settings(kwargs, error, match):
    with pytest.raises(error, match=match):
        IemocapSettings(**kwargs)
