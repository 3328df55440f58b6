"""Tiny media and models for the extraction tests, made in the test: nothing is downloaded.

Audio is synthesized; the face is scikit-image's `astronaut()` (its wheel ships the image), on
which OpenCV's frontal Haar cascade finds the face; the BERT preset and the face model are tiny
random keras-hub / Denseface models saved to a directory.
"""

from __future__ import annotations

import os

import numpy as np

SAMPLE_RATE = 16000
# Word pieces of the tiny BERT: the special tokens keras-hub needs, words, and "##" pieces.
VOCABULARY = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "?", "!",
    "i", "you", "it", "is", "was", "the", "a", "what", "why", "no", "yes", "so", "very", "good", "bad",
    "happy", "angry", "sad", "okay", "excuse", "me", "do", "not", "know", "un", "##believ", "##able",
    "won", "##der", "##ful", "##s", "##ly",
]
BERT_HIDDEN = 16
BERT_POSITIONS = 12  # short, so that a long transcript needs several windows


def write_tone(path, seconds=2.0, sample_rate=SAMPLE_RATE, channels=1, frequency=220.0, subtype=None):
    """A harmonic tone with a little noise, as wav or flac (by the extension); returns the path."""
    import soundfile

    t = np.arange(int(seconds * sample_rate)) / sample_rate
    rng = np.random.default_rng(0)
    mono = 0.3 * np.sin(2 * np.pi * frequency * t) + 0.1 * np.sin(2 * np.pi * 3 * frequency * t)
    mono = mono * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t)) + 0.01 * rng.normal(size=t.shape)
    samples = np.stack([mono * (1 - 0.1 * c) for c in range(channels)], axis=1) if channels > 1 else mono
    soundfile.write(str(path), samples.astype(np.float32), sample_rate, subtype=subtype)
    return str(path)


def tiny_bert_preset(directory):
    """A 1-layer, 16-wide random BERT and its tokenizer saved as a keras-hub preset; returns the path."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(1)
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=VOCABULARY, lowercase=True)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(VOCABULARY), num_layers=1, num_heads=2, hidden_dim=BERT_HIDDEN,
        intermediate_dim=32, max_sequence_length=BERT_POSITIONS)
    os.makedirs(directory, exist_ok=True)
    backbone.save_to_preset(str(directory))
    tokenizer.save_to_preset(str(directory))
    return str(directory)


def face_image(side=256):
    """scikit-image's astronaut as a grayscale uint8 `(side, side)` image (the face is found in it)."""
    import cv2
    from skimage import data

    gray = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    return cv2.resize(gray, (side, side), interpolation=cv2.INTER_AREA)


def write_video(path, frames, fps=10.0):
    """Writes grayscale uint8 frames `(height, width)` as an MJPG .avi; returns the path."""
    import cv2

    height, width = frames[0].shape
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    return str(path)


def blank_frame(side=256, value=128):
    """A frame without a face: smooth gradient."""
    ramp = np.linspace(value - 60, value + 60, side, dtype=np.float32)
    return np.clip(ramp[None, :] + np.zeros((side, 1), np.float32), 0, 255).astype(np.uint8)


def side_by_side(left, right):
    """Two frames next to each other, as IEMOCAP's split-screen recordings."""
    return np.concatenate([left, right], axis=1)


def tiny_face_model(path, seed=2):
    """A Denseface with 2 layers per block (about 45 k parameters), random, saved as .keras."""
    import keras

    from mmin_tf.features.denseface import Denseface

    keras.utils.set_random_seed(seed)
    model = Denseface(layers_per_block=2)
    model(np.zeros((1, 64, 64, 1), np.float32))
    model.save(str(path))
    return str(path)


TEXTS = ("Excuse me.", "No, I do not know why.", "It was very good!", "So sad.")


def media_records(directory, video, count=12):
    """`count` media records of 3 sessions x 2 speakers, 2 labels: a tone wav each (length and
    pitch vary), a transcript, `video` with the face on its right half from a varying start."""
    from mmin_tf.data.media_manifest import FaceRegion, MediaRecord

    records = []
    for index in range(count):
        group = f"Ses0{index // 4 + 1}"
        speaker = group + "FM"[index // 2 % 2]
        wav = write_tone(os.path.join(str(directory), f"u{index:02d}.wav"), seconds=0.8 + 0.1 * index,
                         frequency=200.0 + 150 * (index % 2))
        records.append(MediaRecord(
            f"{speaker}_{index:02d}", speaker, group, ("happy", "sad")[index % 2], audio=wav,
            transcript=TEXTS[index % 4], video=str(video), video_start=0.1 * (index % 3),
            face_region=FaceRegion(0.5, 0, 1, 1), source=f"test row {index}"))
    return records
