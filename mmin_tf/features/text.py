"""Text features: BERT last-layer embeddings of a transcript, from keras-hub (paper §4.2).

The original encodes each transcript with BERT-large and keeps the last layer's vectors of the
word pieces, [CLS] and [SEP] removed: 1024 values per piece (`TextAlignment.PIECES`, the
default). `TextAlignment.WORDS` gives one vector per whitespace-separated word instead, the mean
of its pieces (the original built such a variant but did not train on it). A transcript with
more pieces than the model's positions is encoded in consecutive windows, each with its own
[CLS] and [SEP], and the windows' vectors are concatenated: nothing is truncated.

The model is a keras-hub `BertBackbone` + `BertTokenizer` loaded from a local preset directory,
never downloaded: a Keras preset (`save_to_preset`: `config.json`, `model.weights.h5`,
`tokenizer.json`, `assets/tokenizer/vocabulary.txt`) or a Hugging Face BERT directory
(`config.json` with `"model_type": "bert"`, `tokenizer_config.json`, `vocab.txt`,
`model.safetensors`), which keras-hub converts as it loads (that needs the `safetensors`
package; a checkpoint with only `pytorch_model.bin` does not load).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
from typing import Sequence

import numpy as np

from mmin_tf.features.media import MediaError

KERAS_PRESET_FILES = ("config.json", "model.weights.h5", "tokenizer.json", os.path.join("assets", "tokenizer", "vocabulary.txt"))
HUGGING_FACE_FILES = ("config.json", "tokenizer_config.json", "vocab.txt", "model.safetensors")
HOW_TO_MAKE_A_PRESET = (
    "Make one on a machine with network access: `import keras_hub; "
    "keras_hub.models.BertBackbone.from_preset('bert_large_en_uncased').save_to_preset(DIR); "
    "keras_hub.models.BertTokenizer.from_preset('bert_large_en_uncased').save_to_preset(DIR)`, or "
    "use a Hugging Face BERT directory (config.json, tokenizer_config.json, vocab.txt, model.safetensors); "
    "see docs/features.md"
)


class TextAlignment(enum.Enum):
    """One vector per word piece or per word."""

    PIECES = "pieces"  # every word piece, [CLS]/[SEP] removed (the original)
    WORDS = "words"  # one per whitespace-separated word: the mean of its pieces


@dataclasses.dataclass(frozen=True)
class TextSettings:
    """How text features are extracted (recorded in `dataset.json`).

    Attributes:
        alignment: `TextAlignment`.
    """

    alignment: TextAlignment = TextAlignment.PIECES

    def __post_init__(self):
        if not isinstance(self.alignment, TextAlignment):
            raise TypeError(f"`alignment` must be a TextAlignment. Received: {self.alignment!r}")

    def to_json(self) -> dict:
        return {"alignment": self.alignment.value}

    @classmethod
    def from_json(cls, config: dict) -> "TextSettings":
        return cls(TextAlignment(config["alignment"]))


def check_preset(preset_dir: str) -> str:
    """The preset's kind, "keras" or "hugging_face"; a `FileNotFoundError` saying how to make one."""
    if not os.path.isdir(preset_dir):
        raise FileNotFoundError(f"BERT preset directory {preset_dir!r} does not exist. {HOW_TO_MAKE_A_PRESET}")
    config_path = os.path.join(preset_dir, "config.json")
    kind = "keras"
    if os.path.isfile(config_path):
        with open(config_path) as f:
            kind = "hugging_face" if "model_type" in json.load(f) else "keras"
    required = HUGGING_FACE_FILES if kind == "hugging_face" else KERAS_PRESET_FILES
    missing = [name for name in required if not os.path.isfile(os.path.join(preset_dir, name))]
    if missing:
        raise FileNotFoundError(
            f"BERT preset directory {preset_dir!r} is incomplete: {missing} missing. {HOW_TO_MAKE_A_PRESET}")
    return kind


def preset_hidden_dim(preset_dir: str) -> int:
    """The width of the preset's vectors, read from its config.json without loading the model."""
    kind = check_preset(preset_dir)
    with open(os.path.join(preset_dir, "config.json")) as f:
        config = json.load(f)
    return int(config["hidden_size"] if kind == "hugging_face" else config["config"]["hidden_dim"])


def preset_weights_file(preset_dir: str) -> str:
    """The file holding the preset's weights (what identifies the model in recorded settings)."""
    name = "model.safetensors" if check_preset(preset_dir) == "hugging_face" else "model.weights.h5"
    return os.path.join(preset_dir, name)


class TextExtractor:
    """BERT last-layer embeddings of transcripts.

    Args:
        preset_dir: a local keras-hub or Hugging Face BERT directory (see the module docstring).
        settings: `TextSettings`.
        batch_size: windows encoded together.
    """

    def __init__(self, preset_dir: str, settings: TextSettings = TextSettings(), batch_size: int = 16):
        import keras_hub

        check_preset(preset_dir)
        self.settings = settings
        self.batch_size = batch_size
        self.tokenizer = keras_hub.models.BertTokenizer.from_preset(preset_dir)
        self.backbone = keras_hub.models.BertBackbone.from_preset(preset_dir)
        self.window = self.backbone.max_sequence_length - 2  # pieces per window, besides [CLS] and [SEP]
        import tensorflow as tf

        ids = tf.TensorSpec([None, None], tf.int32)
        self._last_layer = tf.function(
            lambda inputs: self.backbone(inputs, training=False)["sequence_output"],
            input_signature=[{"token_ids": ids, "segment_ids": ids, "padding_mask": tf.TensorSpec([None, None], tf.bool)}],
        )  # one trace for every batch shape

    @property
    def feature_dim(self) -> int:
        return self.backbone.hidden_dim

    def _pieces(self, text: str, name: str) -> tuple[list[int], list[int]]:
        """The text's piece ids and, per piece, the index of its word (-1 in PIECES mode)."""
        if self.settings.alignment is TextAlignment.PIECES:
            pieces = [int(piece) for piece in np.asarray(self.tokenizer(text))]
            words = [-1] * len(pieces)
        else:
            pieces, words = [], []
            for index, word_pieces in enumerate(self.tokenizer.tokenize(text.split())):
                word_pieces = [int(piece) for piece in np.asarray(word_pieces)]
                pieces += word_pieces
                words += [index] * len(word_pieces)
        if not pieces:
            raise MediaError(f"{name}: the transcript {text!r} gives no word pieces")
        return pieces, words

    def extract_batch(self, texts: Sequence[str], names: Sequence[str] = ()) -> list[np.ndarray]:
        """One float32 `(pieces or words, feature_dim)` array per text.

        Raises:
            MediaError: naming the text's `names` entry, for a text without word pieces or
                features that are not finite.
        """
        names = list(names) or [f"transcript {index}" for index in range(len(texts))]
        tokenized = [self._pieces(text, name) for text, name in zip(texts, names)]
        windows = []  # (text index, piece ids of the window)
        for index, (pieces, _) in enumerate(tokenized):
            for begin in range(0, len(pieces), self.window):
                windows.append((index, pieces[begin:begin + self.window]))
        vectors = [[] for _ in texts]
        for begin in range(0, len(windows), self.batch_size):
            batch = windows[begin:begin + self.batch_size]
            for (index, pieces), output in zip(batch, self._encode([pieces for _, pieces in batch])):
                vectors[index].append(output)
        features = []
        for (pieces, words), parts, name in zip(tokenized, vectors, names):
            piece_vectors = np.concatenate(parts)  # (pieces, dim)
            if self.settings.alignment is TextAlignment.WORDS:
                words = np.asarray(words)
                piece_vectors = np.stack([piece_vectors[words == word].mean(axis=0) for word in np.unique(words)])
            if not np.all(np.isfinite(piece_vectors)):
                raise MediaError(f"{name}: BERT gave NaN or Inf features")
            features.append(piece_vectors.astype(np.float32))
        return features

    def _encode(self, windows: list[list[int]]) -> list[np.ndarray]:
        """The last layer's vectors of each window's pieces, [CLS] and [SEP] left out."""
        length = max(len(pieces) for pieces in windows) + 2
        token_ids = np.full((len(windows), length), self.tokenizer.pad_token_id, np.int32)
        padding_mask = np.zeros((len(windows), length), bool)
        for row, pieces in enumerate(windows):
            token_ids[row, :len(pieces) + 2] = [self.tokenizer.cls_token_id, *pieces, self.tokenizer.sep_token_id]
            padding_mask[row, :len(pieces) + 2] = True
        outputs = self._last_layer({
            "token_ids": token_ids, "segment_ids": np.zeros_like(token_ids), "padding_mask": padding_mask,
        }).numpy()  # (windows, length, dim)
        return [np.asarray(outputs[row, 1:len(pieces) + 1]) for row, pieces in enumerate(windows)]
