"""Reading media: audio as mono samples at a fixed rate, video as grayscale frames, both inside a span.

Errors name the file and what is wrong with it (`MediaError`, a `DataError`), so a pipeline can
report the utterance that brought the file.
"""

from __future__ import annotations

import io
import math
from typing import Iterator, Optional, Union

import numpy as np
from scipy import signal as scipy_signal

from mmin_tf.data.format import DataError

# Spans may end a little after the media (rounded time stamps in corpus annotations): up to this
# much is accepted and read up to the media's end; more is an error.
SPAN_TOLERANCE_SECONDS = 0.05


class MediaError(DataError):
    """A media file that cannot be read as asked: unreadable, corrupt, empty, a span outside it."""


def _check_span(what: str, duration: float, start: Optional[float], end: Optional[float]) -> tuple[float, float]:
    """`(start, end)` in seconds inside media of `duration` seconds, or a `MediaError`."""
    start = 0.0 if start is None else float(start)
    end = duration if end is None else float(end)
    if start >= duration or end > duration + SPAN_TOLERANCE_SECONDS:
        raise MediaError(f"{what}: the span [{start}, {end}] s lies outside the media's {duration:.3f} s")
    if start < 0 or end <= start:
        raise MediaError(f"{what}: the span [{start}, {end}] s is empty or negative")
    return start, min(end, duration)


def read_audio(
    source: Union[str, bytes],
    sample_rate: int,
    start: Optional[float] = None,
    end: Optional[float] = None,
    name: Optional[str] = None,
) -> np.ndarray:
    """Reads a wav/flac file (or its bytes), mixed down to mono and resampled to `sample_rate`.

    Args:
        source: a file path, or the file's bytes.
        sample_rate: output samples per second.
        start, end: the span in seconds (None: from the beginning / to the end).
        name: how errors name the source (default: the path, or "audio bytes").

    Returns:
        float32 `(samples,)` in [-1, 1].

    Raises:
        MediaError: unreadable or corrupt audio, no samples, or a span outside the audio.
    """
    import soundfile  # the features extra

    what = name or (source if isinstance(source, str) else "audio bytes")
    try:
        with soundfile.SoundFile(io.BytesIO(source) if isinstance(source, bytes) else source) as audio:
            rate, frames = audio.samplerate, audio.frames
            first, last = _check_span(f"audio {what}", frames / rate, start, end) if frames else (0.0, 0.0)
            audio.seek(int(round(first * rate)))
            samples = audio.read(int(round((last - first) * rate)), dtype="float32", always_2d=True)
    except MediaError:
        raise
    except (RuntimeError, soundfile.LibsndfileError, OSError, ValueError) as error:
        raise MediaError(f"audio {what}: cannot be read as audio ({error})") from None
    if samples.size == 0:
        raise MediaError(f"audio {what}: no samples in the span")
    if not np.all(np.isfinite(samples)):
        raise MediaError(f"audio {what}: NaN or Inf samples")
    mono = samples.mean(axis=1)
    if rate != sample_rate:
        divisor = math.gcd(rate, sample_rate)
        mono = scipy_signal.resample_poly(mono, sample_rate // divisor, rate // divisor)
    return mono.astype(np.float32)


def read_video_frames(
    path: str,
    frame_rate: Optional[float] = None,
    start: Optional[float] = None,
    end: Optional[float] = None,
) -> Iterator[tuple[float, np.ndarray]]:
    """Yields `(time in seconds, grayscale frame (height, width) uint8)` inside the span.

    Args:
        path: a video file OpenCV can open.
        frame_rate: frames per second to keep (the first frame at or after each multiple of
            1/frame_rate from `start`); None keeps every frame.
        start, end: the span in seconds (None: from the beginning / to the end).

    Raises:
        MediaError: a video that cannot be opened, has no frames, or a span outside it.
    """
    import cv2

    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            raise MediaError(f"video {path}: cannot be opened as a video")
        fps = capture.get(cv2.CAP_PROP_FPS)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if not fps or fps <= 0 or count <= 0:
            raise MediaError(f"video {path}: no frames (frame rate {fps}, {count} frames)")
        first, last = _check_span(f"video {path}", count / fps, start, end)
        index = int(math.floor(first * fps + 1e-6))
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        step = None if frame_rate is None else fps / frame_rate
        next_kept = float(index)
        while index / fps < last:
            ok, frame = capture.read()
            if not ok:
                break
            if step is None or index >= next_kept - 1e-6:
                yield index / fps, cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
                if step is not None:
                    next_kept += step
            index += 1
    finally:
        capture.release()
