"""The MSP-IMPROV reader on a fake release tree with the release's names and label-file format."""

import logging
import os
import shutil

import numpy as np
import pytest
import soundfile

from mmin_tf.corpora import msp_improv
from mmin_tf.corpora.msp_improv import MspImprovSettings, MspSpeakerRule, read_msp_improv
from mmin_tf.data.format import DataError
from mmin_tf.data.media_manifest import FaceRegion, read_media_manifest, write_media_manifest
from mmin_tf.data.synthetic import IEMOCAP_LABEL_NAMES

SETTINGS = MspImprovSettings(sessions=(1, 2))
RATE = 8000

# (name without prefix, consensus letter, wav seconds, transcript: str, None = no file, bytes = raw)
RECORDINGS = [
    ("S01A-F01-S-FM01", "A", 1.2, "I am so angry with you."),
    ("S01A-F01-S-MF02", "N", 1.0, "Okay."),  # exactly 1 s: kept
    ("S01H-M01-S-MF01", "H", 1.5, None),  # no transcript file: counted
    ("S01H-M01-S-MF02", "O", 1.5, "Other."),
    ("S01S-M01-S-FM03", "X", 1.5, "No agreement."),
    ("S01S-F01-S-FM04", "S", 0.5, "Too short."),  # < 1 s: dropped
    ("S01A-F01-R-FF01", "A", 1.5, "Read."),
    ("S01A-F01-P-FM05", "N", 1.5, "Natural."),
    ("S01A-F01-T-FM06", "H", 1.5, "Target."),
    ("S02S-F02-S-FM01", "S", 1.3, "Je suis d\u00e9\u00e7ue.".encode("latin-1")),  # not UTF-8: counted
    ("S02N-M02-S-MF01", "N", 1.1, "   "),  # empty: counted
    ("S03A-F03-S-FM01", "A", 1.5, "Session three."),  # session not selected
]


def _sessions(name):
    return int(name.split("-")[1][1:])


def _label_line(name, letter):
    return f"UTD-IMPROV-{name}.avi; {letter}; A:3.200000; V:2.800000; D:3.000000 ; N:3.400000;"


def write_release(root, recordings=RECORDINGS, audio_dir="Audio", video_dir="Video", label_only_sessions=(3,)):
    """Writes Evalution.txt (recording lines, each followed by rater lines), one real wav per
    recording (durations matter), avi placeholders (the reader only checks they exist) and the
    transcripts. Recordings of `label_only_sessions` are only in the label file."""
    os.makedirs(os.path.join(root, "All_human_transcriptions"))
    lines = []
    for name, letter, seconds, transcript in recordings:
        lines += [_label_line(name, letter),
                  "p01; Angry; Frustrated; A:4.0; V:2.0; D:3.0; N:3.0;",
                  "p02; Neutral; ; A:3.0; V:3.0; D:3.0; N:4.0;",
                  ""]
        session = _sessions(name)
        if session in label_only_sessions:
            continue
        sentence, condition = name.split("-")[0], name.split("-")[2]
        relative = os.path.join(f"session{session}", sentence, condition)
        audio = os.path.join(root, audio_dir, relative, f"MSP-IMPROV-{name}.wav")
        os.makedirs(os.path.dirname(audio), exist_ok=True)
        soundfile.write(audio, np.zeros(int(RATE * seconds), np.float32), RATE)
        if video_dir is not None:
            video = os.path.join(root, video_dir, relative, f"UTD-IMPROV-{name}.avi")
            os.makedirs(os.path.dirname(video), exist_ok=True)
            open(video, "wb").close()
        if transcript is not None:
            data = transcript if isinstance(transcript, bytes) else transcript.encode("utf-8")
            with open(os.path.join(root, "All_human_transcriptions", f"MSP-IMPROV-{name}.txt"), "wb") as f:
                f.write(data + b"\n")
    with open(os.path.join(root, "Evalution.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return str(root)


@pytest.fixture()
def release(tmp_path):
    return write_release(tmp_path / "MSP-IMPROV")


def _by_id(result):
    return {record.utterance_id: record for record in result.records}


def _line_of(name):
    return 4 * [n for n, *_ in RECORDINGS].index(name) + 1


def test_selection_labels_speakers_and_groups(release):
    result = read_msp_improv(release, SETTINGS)
    records = _by_id(result)
    assert list(records) == [
        "MSP-IMPROV-S01A-F01-S-FM01", "MSP-IMPROV-S01A-F01-S-MF02", "MSP-IMPROV-S01H-M01-S-MF01",
        "MSP-IMPROV-S02S-F02-S-FM01", "MSP-IMPROV-S02N-M02-S-MF01",
    ]
    assert {i: r.label for i, r in records.items()} == {
        "MSP-IMPROV-S01A-F01-S-FM01": "anger", "MSP-IMPROV-S01A-F01-S-MF02": "neutral",
        "MSP-IMPROV-S01H-M01-S-MF01": "happy", "MSP-IMPROV-S02S-F02-S-FM01": "sadness",
        "MSP-IMPROV-S02N-M02-S-MF01": "neutral",
    }
    assert {i: (r.speaker, r.group) for i, r in records.items()} == {
        "MSP-IMPROV-S01A-F01-S-FM01": ("F01", "session1"), "MSP-IMPROV-S01A-F01-S-MF02": ("F01", "session1"),
        "MSP-IMPROV-S01H-M01-S-MF01": ("M01", "session1"), "MSP-IMPROV-S02S-F02-S-FM01": ("F02", "session2"),
        "MSP-IMPROV-S02N-M02-S-MF01": ("M02", "session2"),
    }
    first = records["MSP-IMPROV-S01A-F01-S-FM01"]
    assert first.audio == os.path.join(release, "Audio", "session1", "S01A", "S", "MSP-IMPROV-S01A-F01-S-FM01.wav")
    assert first.video == os.path.join(release, "Video", "session1", "S01A", "S", "UTD-IMPROV-S01A-F01-S-FM01.avi")
    assert first.transcript == "I am so angry with you."
    assert (first.start, first.end, first.face_region) == (None, None, None)
    assert first.source == os.path.join(release, "Evalution.txt") + " line 1"


def test_records_round_trip_through_the_media_manifest(release, tmp_path):
    records = read_msp_improv(release, SETTINGS).records
    path = str(tmp_path / "msp_media.csv")
    assert write_media_manifest(path, records) == 5
    fields = ("utterance_id", "speaker", "group", "label", "audio", "transcript", "video", "start", "end")
    assert [[getattr(r, f) for f in fields] for r in read_media_manifest(path)] == [
        [getattr(r, f) for f in fields] for r in records]


def test_label_names_and_paper_counts():
    assert msp_improv.LABEL_NAMES == IEMOCAP_LABEL_NAMES
    assert msp_improv.PAPER_COUNTS == {"happy": 999, "anger": 460, "sadness": 627, "neutral": 1733}
    assert sum(msp_improv.PAPER_COUNTS.values()) == 3819


def test_counts_are_returned_and_logged(release, caplog):
    with caplog.at_level(logging.INFO, logger="absl"):
        counts = read_msp_improv(release, SETTINGS).counts
    assert counts.kept_per_label == {"happy": 1, "anger": 1, "sadness": 1, "neutral": 2}
    assert counts.kept_per_group == {"session1": 3, "session2": 2}
    assert counts.dropped_per_label == {"O": 1, "X": 1}
    assert counts.rule_counts == {
        msp_improv.condition_not_selected("P"): 1,
        msp_improv.condition_not_selected("R"): 1,
        msp_improv.condition_not_selected("T"): 1,
        msp_improv.EMPTY_TRANSCRIPT: 1,
        msp_improv.RATER_LINES: 2 * len(RECORDINGS),
        msp_improv.NOT_SELECTED_SESSION: 1,
        msp_improv.SHORTER_THAN_MIN_DURATION: 1,
        msp_improv.TRANSCRIPT_NOT_UTF8: 1,
        msp_improv.WITHOUT_TRANSCRIPT: 1,
    }
    log = caplog.text
    assert "MSP-IMPROV: kept 5 utterances" in log
    assert "per class: happy 1, anger 1, sadness 1, neutral 2" in log
    assert "per group: session1 3, session2 2" in log
    assert "shorter_than_min_duration 1" in log


def test_transcript_quirks_give_records_without_text(release):
    records = _by_id(read_msp_improv(release, SETTINGS))
    assert records["MSP-IMPROV-S01H-M01-S-MF01"].transcript is None  # no file
    assert records["MSP-IMPROV-S02S-F02-S-FM01"].transcript is None  # not UTF-8
    assert records["MSP-IMPROV-S02N-M02-S-MF01"].transcript is None  # empty


def test_the_one_second_rule(release):
    result = read_msp_improv(release, MspImprovSettings(sessions=(1, 2), min_duration_s=1.25))
    assert sorted(_by_id(result)) == ["MSP-IMPROV-S01H-M01-S-MF01", "MSP-IMPROV-S02S-F02-S-FM01"]
    assert result.counts.rule_counts[msp_improv.SHORTER_THAN_MIN_DURATION] == 4
    result = read_msp_improv(release, MspImprovSettings(sessions=(1, 2), min_duration_s=0.0))
    assert "MSP-IMPROV-S01S-F01-S-FM04" in _by_id(result)


def test_other_conditions_can_be_selected(release):
    result = read_msp_improv(release, MspImprovSettings(sessions=(1,), scenarios=("R", "T")))
    assert sorted(_by_id(result)) == ["MSP-IMPROV-S01A-F01-R-FF01", "MSP-IMPROV-S01A-F01-T-FM06"]
    assert result.counts.rule_counts[msp_improv.condition_not_selected("S")] == 6
    assert result.counts.rule_counts[msp_improv.NOT_SELECTED_SESSION] == 3


def test_turn_letter_speaker_rule(release):
    settings = MspImprovSettings(sessions=(1, 2), speaker_rule=MspSpeakerRule.TURN_LETTER)
    records = _by_id(read_msp_improv(release, settings))
    assert records["MSP-IMPROV-S01A-F01-S-FM01"].speaker == "F01"
    assert records["MSP-IMPROV-S01A-F01-S-MF02"].speaker == "M01"
    assert records["MSP-IMPROV-S02S-F02-S-FM01"].speaker == "F02"


def test_layout_without_audio_level_video_or_text(tmp_path):
    release = write_release(tmp_path / "flat", audio_dir="", video_dir=None)
    settings = MspImprovSettings(sessions=(1, 2), audio_dir="", video_dir=None, transcript_dir=None,
                                 face_region=FaceRegion(0.0, 0.0, 0.5, 1.0))
    records = _by_id(read_msp_improv(release, settings))
    record = records["MSP-IMPROV-S02N-M02-S-MF01"]
    assert record.audio == os.path.join(release, "session2", "S02N", "S", "MSP-IMPROV-S02N-M02-S-MF01.wav")
    assert (record.video, record.transcript, record.face_region) == (None, None, None)


def test_face_region_setting_reaches_the_records(release):
    region = FaceRegion(0.25, 0.0, 0.75, 1.0)
    records = read_msp_improv(release, MspImprovSettings(sessions=(1, 2), face_region=region)).records
    assert {record.face_region for record in records} == {region}


def test_full_release_counts_are_compared_with_the_paper(tmp_path, caplog):
    recordings = [(f"S{n:02d}A-F{n:02d}-S-FM01", "A", 1.5, "Hi.") for n in range(1, 7)]
    release = write_release(tmp_path / "full", recordings, label_only_sessions=())
    with caplog.at_level(logging.INFO, logger="absl"):
        counts = read_msp_improv(release).counts
    assert counts.kept_per_group == {f"session{n}": 1 for n in range(1, 7)}
    paper = "{'happy': 999, 'anger': 460, 'sadness': 627, 'neutral': 1733}"
    assert f"class counts differ from the paper's {paper}" in caplog.text


def test_missing_session_directory(release):
    with pytest.raises(DataError, match=r"audio session directory .*Audio.session3 not found"):
        read_msp_improv(release)  # the default settings read sessions 1..6


def test_missing_video_session_directory(release):
    shutil.rmtree(os.path.join(release, "Video", "session2"))
    with pytest.raises(DataError, match=r"video session directory .*Video.session2 not found"):
        read_msp_improv(release, SETTINGS)


def test_missing_release_or_label_file(release, tmp_path):
    with pytest.raises(DataError, match=r"release directory .*absent not found"):
        read_msp_improv(str(tmp_path / "absent"), SETTINGS)
    with pytest.raises(DataError, match=r"label file .*Evaluation\.txt not found"):
        read_msp_improv(release, MspImprovSettings(sessions=(1, 2), label_file="Evaluation.txt"))


def test_missing_transcript_directory(release):
    shutil.rmtree(os.path.join(release, "All_human_transcriptions"))
    with pytest.raises(DataError, match=r"transcript directory .*All_human_transcriptions not found"):
        read_msp_improv(release, SETTINGS)


def _rewrite_labels(release, old, new):
    path = os.path.join(release, "Evalution.txt")
    with open(path) as f:
        text = f.read()
    assert old in text
    with open(path, "w") as f:
        f.write(text.replace(old, new))


def test_label_line_that_does_not_parse(release):
    _rewrite_labels(release, "UTD-IMPROV-S01H-M01-S-MF01.avi; H;", "UTD-IMPROV-S01H-M01-S-MF01.avi; ;")
    line = _line_of("S01H-M01-S-MF01")
    with pytest.raises(DataError, match=rf"Evalution\.txt line {line} does not parse"):
        read_msp_improv(release, SETTINGS)


def test_recording_name_that_does_not_parse(release):
    _rewrite_labels(release, "UTD-IMPROV-S01H-M01-S-MF01.avi", "UTD-IMPROV-S01H-M1-S-MF01.avi")
    with pytest.raises(DataError, match=r"line 9: recording name 'UTD-IMPROV-S01H-M1-S-MF01' is not"):
        read_msp_improv(release, SETTINGS)


def test_repeated_recording(release):
    _rewrite_labels(release, "UTD-IMPROV-S01A-F01-S-MF02.avi", "UTD-IMPROV-S01A-F01-S-FM01.avi")
    match = r"line 5: recording 'MSP-IMPROV-S01A-F01-S-FM01' is repeated \(first at line 1\)"
    with pytest.raises(DataError, match=match):
        read_msp_improv(release, SETTINGS)


def test_missing_wav(release):
    os.remove(os.path.join(release, "Audio", "session2", "S02S", "S", "MSP-IMPROV-S02S-F02-S-FM01.wav"))
    with pytest.raises(DataError, match=r"utterance 'MSP-IMPROV-S02S-F02-S-FM01' .*line 37\): wav .* not found"):
        read_msp_improv(release, SETTINGS)


def test_unreadable_wav(release):
    with open(os.path.join(release, "Audio", "session1", "S01A", "S", "MSP-IMPROV-S01A-F01-S-FM01.wav"), "wb") as f:
        f.write(b"not a wav file")
    with pytest.raises(DataError, match=r"utterance 'MSP-IMPROV-S01A-F01-S-FM01' .*: wav .* cannot be read"):
        read_msp_improv(release, SETTINGS)


def test_missing_video(release):
    os.remove(os.path.join(release, "Video", "session1", "S01H", "S", "UTD-IMPROV-S01H-M01-S-MF01.avi"))
    match = r"utterance 'MSP-IMPROV-S01H-M01-S-MF01' .*: video .*UTD-IMPROV-S01H-M01-S-MF01\.avi not found"
    with pytest.raises(DataError, match=match):
        read_msp_improv(release, SETTINGS)


def test_label_file_that_is_not_utf8(release):
    with open(os.path.join(release, "Evalution.txt"), "ab") as f:
        f.write(b"p03; Happy \xff; A:3.0;\n")
    with pytest.raises(DataError, match=rf"Evalution\.txt line {4 * len(RECORDINGS) + 1} is not UTF-8"):
        read_msp_improv(release, SETTINGS)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(sessions=(0,)), ValueError, r"`sessions` must be distinct session numbers"),
    (dict(sessions=(7,)), ValueError, r"`sessions` must be distinct session numbers"),
    (dict(scenarios=("Q",)), ValueError, r"`scenarios` must be distinct condition letters"),
    (dict(scenarios=()), ValueError, r"`scenarios` must be distinct condition letters"),
    (dict(min_duration_s=-1.0), ValueError, r"`min_duration_s` must be a non-negative number"),
    (dict(label_map=(("H", "joy"),)), ValueError, r"not in label_names"),
    (dict(label_file=""), ValueError, r"`label_file` must be a file name"),
    (dict(speaker_rule="actor_field"), TypeError, r"`speaker_rule` must be an MspSpeakerRule"),
    (dict(face_region=(0, 0, 1, 1)), TypeError, r"`face_region` must be a FaceRegion or None"),
    (dict(video_prefix="IMPROV"), ValueError, r"`video_prefix` must be 'UTD-IMPROV' or 'MSP-IMPROV'"),
])
def test_bad_settings(kwargs, error, match):
    with pytest.raises(error, match=match):
        MspImprovSettings(**kwargs)
