"""Reading audio and video spans."""

import numpy as np
import pytest
import soundfile

from mmin_tf.features import media
from mmin_tf.features.media import MediaError
from tests import media_fixtures


def test_audio_is_mono_at_the_asked_rate(tmp_path):
    path = media_fixtures.write_tone(tmp_path / "a.wav", seconds=1.5, sample_rate=44100, channels=2)
    samples = media.read_audio(path, 16000)
    assert samples.dtype == np.float32 and samples.shape == (24000,)
    stereo, _ = soundfile.read(path, dtype="float32")
    # The mixdown is the channels' mean: its energy lies between the two channels'.
    energies = np.sqrt(np.mean(stereo ** 2, axis=0))
    assert energies.min() - 1e-3 < np.sqrt(np.mean(samples ** 2)) < energies.max() + 1e-3


def test_flac_and_bytes_read_as_the_file(tmp_path):
    path = media_fixtures.write_tone(tmp_path / "a.flac", seconds=1.0)
    from_file = media.read_audio(path, 16000)
    with open(path, "rb") as f:
        from_bytes = media.read_audio(f.read(), 16000)
    np.testing.assert_array_equal(from_file, from_bytes)
    assert from_file.shape == (16000,)


def test_a_span_reads_those_seconds(tmp_path):
    path = media_fixtures.write_tone(tmp_path / "a.wav", seconds=2.0)
    whole = media.read_audio(path, 16000)
    span = media.read_audio(path, 16000, start=0.5, end=1.25)
    np.testing.assert_array_equal(span, whole[8000:20000])
    np.testing.assert_array_equal(media.read_audio(path, 16000, start=1.5), whole[24000:])


@pytest.mark.parametrize("start, end, match", [
    (1.0, 3.0, "lies outside the media's 2.000 s"),
    (2.5, None, "lies outside"),
    (1.0, 0.5, "empty or negative"),
])
def test_a_span_outside_the_audio_is_an_error(tmp_path, start, end, match):
    path = media_fixtures.write_tone(tmp_path / "a.wav", seconds=2.0)
    with pytest.raises(MediaError, match=match):
        media.read_audio(path, 16000, start, end)


def test_a_span_ending_within_the_tolerance_reads_to_the_end(tmp_path):
    path = media_fixtures.write_tone(tmp_path / "a.wav", seconds=2.0)
    assert len(media.read_audio(path, 16000, 1.0, 2.0 + media.SPAN_TOLERANCE_SECONDS / 2)) == 16000


def test_corrupt_and_empty_audio_are_errors(tmp_path):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    with pytest.raises(MediaError, match=r"corrupt.wav: cannot be read as audio"):
        media.read_audio(str(corrupt), 16000)
    with pytest.raises(MediaError, match="audio bytes: cannot be read"):
        media.read_audio(b"not audio at all", 16000)
    empty = tmp_path / "empty.wav"
    soundfile.write(str(empty), np.zeros(0, np.float32), 16000)
    with pytest.raises(MediaError, match="empty.wav: no samples"):
        media.read_audio(str(empty), 16000)
    nan = tmp_path / "nan.wav"
    soundfile.write(str(nan), np.full(1600, np.nan, np.float32), 16000, subtype="FLOAT")
    with pytest.raises(MediaError, match="nan.wav: NaN or Inf samples"):
        media.read_audio(str(nan), 16000)


def test_video_frames_inside_a_span(face_video):
    times = [time for time, _ in media.read_video_frames(face_video)]
    np.testing.assert_allclose(times, np.arange(8) / 10)
    frames = list(media.read_video_frames(face_video, start=0.2, end=0.5))
    np.testing.assert_allclose([time for time, _ in frames], [0.2, 0.3, 0.4])
    assert frames[0][1].shape == (256, 512) and frames[0][1].dtype == np.uint8


def test_video_frame_rate_keeps_one_frame_per_period(face_video):
    np.testing.assert_allclose([time for time, _ in media.read_video_frames(face_video, frame_rate=5)], [0, 0.2, 0.4, 0.6])


def test_unreadable_video_and_span_outside_are_errors(tmp_path, face_video):
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"this is not a video")
    with pytest.raises(MediaError, match="broken.avi: cannot be opened as a video"):
        list(media.read_video_frames(str(broken)))
    with pytest.raises(MediaError, match="lies outside the media's 0.800 s"):
        list(media.read_video_frames(face_video, start=1.0, end=2.0))
