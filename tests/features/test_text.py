"""BERT last-layer embeddings from a local keras-hub or Hugging Face preset."""

import json
import os
import shutil

import keras_hub
import numpy as np
import pytest

from mmin_tf.features import text
from mmin_tf.features.media import MediaError
from mmin_tf.features.text import TextAlignment, TextExtractor, TextSettings
from tests import media_fixtures


@pytest.fixture(scope="module")
def extractor(bert_preset):
    return TextExtractor(bert_preset)


def _last_layer(preset, pieces):
    """The backbone's vectors of `[CLS] pieces [SEP]`, computed directly."""
    backbone = keras_hub.models.BertBackbone.from_preset(preset)
    ids = np.asarray([[2, *pieces, 3]], np.int32)
    return np.asarray(backbone({"token_ids": ids, "segment_ids": np.zeros_like(ids),
                                "padding_mask": np.ones_like(ids, bool)})["sequence_output"])[0]


def test_one_vector_per_piece_without_cls_and_sep(extractor, bert_preset):
    tokenizer = keras_hub.models.BertTokenizer.from_preset(bert_preset)
    pieces = [int(p) for p in np.asarray(tokenizer("Excuse me. Unbelievable!"))]
    assert len(pieces) == 7  # excuse me . un ##believ ##able !
    [features] = extractor.extract_batch(["Excuse me. Unbelievable!"])
    assert features.shape == (7, media_fixtures.BERT_HIDDEN) and features.dtype == np.float32
    np.testing.assert_allclose(features, _last_layer(bert_preset, pieces)[1:-1], atol=1e-5)


def test_batching_does_not_change_a_text_s_vectors(extractor):
    short, long = "Excuse me.", "You do not know why it was so very good"
    together = extractor.extract_batch([short, long])
    np.testing.assert_allclose(together[0], extractor.extract_batch([short])[0], atol=1e-5)
    np.testing.assert_allclose(together[1], extractor.extract_batch([long])[0], atol=1e-5)


def test_a_text_longer_than_the_model_is_encoded_in_windows(extractor, bert_preset):
    words = "so very good " * 7  # 21 pieces; the tiny model has 12 positions: 10 pieces per window
    [features] = extractor.extract_batch([words])
    assert features.shape == (21, media_fixtures.BERT_HIDDEN)
    tokenizer = keras_hub.models.BertTokenizer.from_preset(bert_preset)
    pieces = [int(p) for p in np.asarray(tokenizer(words))]
    for begin in (0, 10, 20):
        window = pieces[begin:begin + 10]
        np.testing.assert_allclose(features[begin:begin + len(window)], _last_layer(bert_preset, window)[1:-1], atol=1e-5)


def test_word_alignment_averages_each_word_s_pieces(bert_preset):
    pieces = TextExtractor(bert_preset)
    words = TextExtractor(bert_preset, TextSettings(TextAlignment.WORDS))
    [by_word] = words.extract_batch(["wonderful unbelievable me"])
    assert by_word.shape == (3, media_fixtures.BERT_HIDDEN)
    tokenizer = keras_hub.models.BertTokenizer.from_preset(bert_preset)
    ids = [int(p) for p in np.asarray(tokenizer("wonderful unbelievable me"))]
    assert len(ids) == 7  # won ##der ##ful | un ##believ ##able | me
    vectors = _last_layer(bert_preset, ids)[1:-1]
    np.testing.assert_allclose(by_word[0], vectors[0:3].mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(by_word[1], vectors[3:6].mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(by_word[2], vectors[6], atol=1e-5)
    assert pieces.extract_batch(["wonderful unbelievable me"])[0].shape == (7, media_fixtures.BERT_HIDDEN)


def test_a_transcript_without_pieces_is_an_error(extractor):
    with pytest.raises(MediaError, match="transcript 0: the transcript '  ' gives no word pieces"):
        extractor.extract_batch(["  "])


def test_a_missing_or_incomplete_preset_says_how_to_make_one(tmp_path, bert_preset):
    with pytest.raises(FileNotFoundError, match=r"does not exist\. Make one on a machine with network"):
        TextExtractor(str(tmp_path / "nowhere"))
    incomplete = tmp_path / "incomplete"
    shutil.copytree(bert_preset, incomplete)
    os.remove(incomplete / "model.weights.h5")
    with pytest.raises(FileNotFoundError, match=r"incomplete: \['model.weights.h5'\] missing.*save_to_preset"):
        TextExtractor(str(incomplete))


def test_preset_facts_without_loading_the_model(bert_preset):
    assert text.preset_hidden_dim(bert_preset) == media_fixtures.BERT_HIDDEN
    assert text.preset_weights_file(bert_preset) == os.path.join(bert_preset, "model.weights.h5")


def _hugging_face_directory(directory, bert_preset):
    """The tiny preset's weights written as a Hugging Face BERT checkpoint (config.json,
    vocab.txt, model.safetensors with Hugging Face's names and layouts)."""
    from safetensors.numpy import save_file

    backbone = keras_hub.models.BertBackbone.from_preset(bert_preset)
    layer = backbone.get_layer("transformer_layer_0")
    attention = layer._self_attention_layer
    hidden = backbone.hidden_dim

    def dense(kernel):  # keras (in, heads, head_dim) / (heads, head_dim, out) -> torch (out, in)
        kernel = np.asarray(kernel)
        return np.ascontiguousarray(kernel.reshape(hidden, -1).T if kernel.shape[0] == hidden else kernel.reshape(-1, hidden).T)

    tensors = {
        "bert.embeddings.word_embeddings.weight": backbone.get_layer("token_embedding").embeddings,
        "bert.embeddings.position_embeddings.weight": backbone.get_layer("position_embedding").position_embeddings,
        "bert.embeddings.token_type_embeddings.weight": backbone.get_layer("segment_embedding").embeddings,
        "bert.embeddings.LayerNorm.gamma": backbone.get_layer("embeddings_layer_norm").gamma,
        "bert.embeddings.LayerNorm.beta": backbone.get_layer("embeddings_layer_norm").beta,
        "bert.pooler.dense.weight": np.asarray(backbone.get_layer("pooled_dense").kernel).T,
        "bert.pooler.dense.bias": backbone.get_layer("pooled_dense").bias,
    }
    prefix = "bert.encoder.layer.0."
    for name, part in (("query", attention.query_dense), ("key", attention.key_dense), ("value", attention.value_dense)):
        tensors[f"{prefix}attention.self.{name}.weight"] = dense(part.kernel)
        tensors[f"{prefix}attention.self.{name}.bias"] = np.asarray(part.bias).reshape(-1)
    tensors[f"{prefix}attention.output.dense.weight"] = dense(attention.output_dense.kernel)
    tensors[f"{prefix}attention.output.dense.bias"] = attention.output_dense.bias
    tensors[f"{prefix}attention.output.LayerNorm.gamma"] = layer._self_attention_layer_norm.gamma
    tensors[f"{prefix}attention.output.LayerNorm.beta"] = layer._self_attention_layer_norm.beta
    tensors[f"{prefix}intermediate.dense.weight"] = np.asarray(layer._feedforward_intermediate_dense.kernel).T
    tensors[f"{prefix}intermediate.dense.bias"] = layer._feedforward_intermediate_dense.bias
    tensors[f"{prefix}output.dense.weight"] = np.asarray(layer._feedforward_output_dense.kernel).T
    tensors[f"{prefix}output.dense.bias"] = layer._feedforward_output_dense.bias
    tensors[f"{prefix}output.LayerNorm.gamma"] = layer._feedforward_layer_norm.gamma
    tensors[f"{prefix}output.LayerNorm.beta"] = layer._feedforward_layer_norm.beta
    os.makedirs(directory)
    save_file({key: np.ascontiguousarray(np.asarray(value, np.float32)) for key, value in tensors.items()},
              os.path.join(directory, "model.safetensors"))
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump({"model_type": "bert", "vocab_size": len(media_fixtures.VOCABULARY), "num_hidden_layers": 1,
                   "num_attention_heads": 2, "hidden_size": hidden, "intermediate_size": 32,
                   "max_position_embeddings": media_fixtures.BERT_POSITIONS, "do_lower_case": True}, f)
    with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
        json.dump({"do_lower_case": True, "tokenizer_class": "BertTokenizer"}, f)
    with open(os.path.join(directory, "vocab.txt"), "w") as f:
        f.write("\n".join(media_fixtures.VOCABULARY) + "\n")
    return str(directory)


def test_a_hugging_face_bert_directory_loads_and_gives_the_same_vectors(tmp_path, bert_preset):
    hugging_face = _hugging_face_directory(tmp_path / "hf", bert_preset)
    assert text.preset_hidden_dim(hugging_face) == media_fixtures.BERT_HIDDEN
    assert text.preset_weights_file(hugging_face).endswith("model.safetensors")
    sentence = "Excuse me. Unbelievable!"
    np.testing.assert_allclose(
        TextExtractor(hugging_face).extract_batch([sentence])[0], TextExtractor(bert_preset).extract_batch([sentence])[0],
        atol=1e-4)


def test_settings_round_trip_and_validation():
    settings = TextSettings(TextAlignment.WORDS)
    assert TextSettings.from_json(settings.to_json()) == settings
    with pytest.raises(TypeError, match="must be a TextAlignment"):
        TextSettings("pieces")
