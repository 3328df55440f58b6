"""IEMOCAP-like media and random extraction models at the real sizes, shared by the benchmarks.

One utterance: 4.5 s of 16 kHz audio, a 14-word transcript, and 4.5 s of 30 fps 720 x 480
split-screen video with a real face (scikit-image's astronaut) on the right half, IEMOCAP's
layout. The models: a random BERT-large preset (BERT-base with `quick`) with a 30522-piece
vocabulary, and a random Denseface-100. This module defines no flags, so any benchmark script can
import it (the scripts' own flags would clash); the importer puts the repository root on
`sys.path` first (for `tests.media_fixtures`).
"""

import numpy as np

from mmin_tf.data.media_manifest import FaceRegion
from tests import media_fixtures

SECONDS = 4.5
TRANSCRIPT = "I told you already that I do not want to go there again tonight"  # 14 words
FACE_REGION = FaceRegion(0.5, 0, 1, 1)  # the right half of the split screen


def bert_preset(directory, quick):
    """A random BERT-large (or BERT-base with `quick`) preset with a 30522-piece vocabulary;
    returns `(directory, parameters)`."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(0)
    words = sorted(set(TRANSCRIPT.lower().split()))
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    vocabulary += [f"w{index}" for index in range(30522 - len(vocabulary))]
    size = dict(num_layers=12, num_heads=12, hidden_dim=768, intermediate_dim=3072) if quick else dict(
        num_layers=24, num_heads=16, hidden_dim=1024, intermediate_dim=4096)
    backbone = keras_hub.models.BertBackbone(vocabulary_size=len(vocabulary), max_sequence_length=512, **size)
    backbone.save_to_preset(directory)
    keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True).save_to_preset(directory)
    return directory, backbone.count_params()


def face_model(path):
    """A random Denseface-100 saved as `.keras`; returns `(path, parameters)`."""
    import keras

    from mmin_tf.features.denseface import Denseface

    keras.utils.set_random_seed(0)
    model = Denseface()
    model(np.zeros((1, 64, 64, 1), np.float32))
    model.save(path)
    return path, model.count_params()


def audio(path):
    """`SECONDS` of a 16 kHz tone with a little noise, as wav; returns the path."""
    return media_fixtures.write_tone(path, seconds=SECONDS)


def video(path):
    """`SECONDS` at 30 fps, 720 x 480, the astronaut's face on the right half (IEMOCAP's layout)."""
    import cv2

    face = cv2.resize(media_fixtures.face_image(360), (360, 480))
    frame = np.concatenate([np.full((480, 360), 90, np.uint8), face], axis=1)
    return media_fixtures.write_video(path, [frame] * int(SECONDS * 30), fps=30)
