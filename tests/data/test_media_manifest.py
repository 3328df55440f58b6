"""The media manifest: reading, checks with file and line, writing back."""

import os

import pytest

from mmin_tf.data.format import DataError
from mmin_tf.data.media_manifest import FaceRegion, MediaRecord, read_header, read_media_manifest, write_media_manifest

HEADER = "utterance_id,speaker,group,label,audio,transcript,video,start,end,video_start,video_end,face_region\n"


def _write(tmp_path, *rows, header=HEADER):
    path = tmp_path / "media.csv"
    path.write_text(header + "".join(row + "\n" for row in rows), encoding="utf-8")
    return str(path)


def test_a_full_row(tmp_path):
    (tmp_path / "note.txt").write_text("  Hello there.\n", encoding="utf-8")
    path = _write(tmp_path, "u1,s1,g1,happy,a.wav,Excuse me.,v.avi,1.5,3.25,,,0:0:0.5:1",
                  "u2,s1,g1,sad,,note.txt,/abs/v.avi,,,10,12.5,")
    first, second = read_media_manifest(path)
    assert first == MediaRecord("u1", "s1", "g1", "happy", audio=str(tmp_path / "a.wav"), transcript="Excuse me.",
                                video=str(tmp_path / "v.avi"), start=1.5, end=3.25,
                                face_region=FaceRegion(0, 0, 0.5, 1), source=f"{path} line 2")
    assert first.video_span == (1.5, 3.25)
    assert (second.audio, second.transcript, second.video) == (None, "Hello there.", "/abs/v.avi")
    assert (second.start, second.end, second.video_span) == (None, None, (10.0, 12.5))
    assert read_header(path) == HEADER.strip().split(",")


def test_optional_columns_may_be_absent(tmp_path):
    path = _write(tmp_path, "happy,u1,s1,g1,hi", header="label,utterance_id,speaker,group,transcript\n")
    [record] = read_media_manifest(path)
    assert (record.utterance_id, record.label, record.transcript, record.audio) == ("u1", "happy", "hi", None)


@pytest.mark.parametrize("header, match", [
    ("utterance_id,speaker,label,audio\n", r"line 1: header has missing columns \['group'\]"),
    ("utterance_id,speaker,group,label,smell\n", r"unknown columns \['smell'\]"),
    ("utterance_id,speaker,group,label,audio,audio\n", r"repeated columns \['audio'\]"),
])
def test_bad_headers(tmp_path, header, match):
    with pytest.raises(DataError, match=match):
        read_media_manifest(_write(tmp_path, header=header))


@pytest.mark.parametrize("row, match", [
    ("u1,s1,g1,happy,a.wav,,,,,,", r"line 2: expected 12 fields"),
    (",s1,g1,happy,a.wav,,,,,,,", r"line 2.*: empty utterance_id"),
    ("u1,,g1,happy,a.wav,,,,,,,", r"utterance 'u1' .*line 2\): empty speaker"),
    ("u1,s1,g1,happy,,,,,,,,", r"utterance 'u1' .*line 2\): no audio, transcript or video"),
    ("u1,s1,g1,happy,a.wav,,,soon,,,,", r"line 2, utterance 'u1': start must be a number of seconds. Received: 'soon'"),
    ("u1,s1,g1,happy,a.wav,,,-1,,,,", r"start must be a non-negative number of seconds"),
    ("u1,s1,g1,happy,a.wav,,,2,1,,,", r"end 1.0 is not after start 2.0"),
    ("u1,s1,g1,happy,,,v.avi,,,3,2,", r"video_end 2.0 is not after video_start 3.0"),
    ("u1,s1,g1,happy,a.wav,gone.txt,,,,,,", r"transcript file .*gone.txt not found"),
    ("u1,s1,g1,happy,a.wav,,,,,,,0:0:2:1", r"face region is left:top:right:bottom fractions in \[0, 1\]"),
    ("u1,s1,g1,happy,a.wav,,,,,,,0:0:1", r"A face region is left:top:right:bottom, e.g. 0:0:0.5:1"),
    ("u1,s1,g1,happy,a.wav,,,,,,,0.5:0:0.5:1", r"left < right"),
])
def test_bad_rows_name_the_line(tmp_path, row, match):
    with pytest.raises(DataError, match=match):
        list(read_media_manifest(_write(tmp_path, row)))


def test_transcript_file_must_be_utf8(tmp_path):
    (tmp_path / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(DataError, match=r"transcript file .*latin.txt is not UTF-8"):
        list(read_media_manifest(_write(tmp_path, "u1,s1,g1,happy,,latin.txt,,,,,,")))


def test_missing_and_empty_manifests(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_media_manifest(str(tmp_path / "none.csv"))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="is empty; line 1 must be the header"):
        read_media_manifest(str(tmp_path / "empty.csv"))


def test_records_round_trip(tmp_path):
    records = [
        MediaRecord("u1", "s1", "g1", "happy", audio="/x/a.wav", transcript="Yes, no.", video="/x/v.avi",
                    start=0.1, end=2.25, face_region=FaceRegion(0.5, 0, 1, 1)),
        MediaRecord("u2", "s2", "g2", "sad", transcript="Hm", video="/x/v.avi", video_start=1 / 3, video_end=2.0),
    ]
    path = str(tmp_path / "out.csv")
    assert write_media_manifest(path, records) == 2
    read_back = list(read_media_manifest(path))
    for record, back in zip(records, read_back):
        assert {k: v for k, v in back.__dict__.items() if k != "source"} == \
            {k: v for k, v in record.__dict__.items() if k != "source"}
    assert os.listdir(tmp_path) == ["out.csv"]


def test_face_region_pixels():
    assert FaceRegion(0.5, 0, 1, 1).pixels(720, 480) == (360, 0, 720, 480)
    assert str(FaceRegion(0.25, 0.1, 0.75, 1)) == "0.25:0.1:0.75:1"
