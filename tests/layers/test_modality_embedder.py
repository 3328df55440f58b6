"""Tests for `ModalityEmbedder`: per-modality encoders, normalization, missing embeddings (Eq. 1)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmin_tf.layers import ModalityEmbedder, SequenceEncoder, TextCNN
from mmin_tf.layers.modality_embedder import EncoderRows
from tests import layer_checks

MODALITIES = layer_checks.TINY_MODALITIES
SIZES = {"acoustic": 4, "visual": 5, "text": 6}
OFFSETS = {"acoustic": 0, "visual": 4, "text": 9}
OUTPUT_SIZE = 15


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _encoders():
    return {
        "acoustic": SequenceEncoder(SIZES["acoustic"], name="acoustic_encoder"),
        "visual": SequenceEncoder(SIZES["visual"], name="visual_encoder"),
        "text": TextCNN(4, (2, 3), SIZES["text"], 0.5, name="text_encoder"),
    }


def _randomize(layer, seed=0):
    """Random weights, biases included: fresh zero biases would make `h_miss` exactly zero."""
    rng = np.random.default_rng(seed)
    for variable in layer.trainable_variables:
        variable.assign(rng.normal(scale=0.5, size=variable.shape).astype(np.float32))


@pytest.fixture(params=["present", "all"])
def encoder_rows(request):
    """Both ways of reaching the encoders; every behaviour below holds for each."""
    return request.param


def _embedder(encoders=None, normalization=None, encoder_rows="auto"):
    embedder = ModalityEmbedder(MODALITIES, encoders or _encoders(), normalization, encoder_rows=encoder_rows)
    embedder.build()
    if encoders is None:
        _randomize(embedder)
    return embedder


def _inputs(rng, lengths, time=6, padding=0.0, dtype=np.int32):
    """Inputs with `lengths[name]` valid frames per row; `padding` beyond them (everywhere if 0)."""
    inputs = {}
    for spec in MODALITIES:
        rows = np.asarray(lengths[spec.name], dtype)
        features = rng.normal(size=(len(rows), time, spec.feature_dim)).astype(np.float32)
        for row, length in enumerate(rows):
            features[row, length:] = padding
        inputs[spec.name] = features
        inputs[spec.length_key] = rows
    return inputs


def test_xla_matches_eager(encoder_rows):
    """Regression: the all-zero row was sliced from the end of a dynamic batch, which XLA
    compiled to an empty tensor (wrong shape with two modalities, a crash with three)."""
    encoders = {
        "acoustic": SequenceEncoder(SIZES["acoustic"], use_cudnn=False, name="acoustic_encoder"),
        "visual": SequenceEncoder(SIZES["visual"], use_cudnn=False, name="visual_encoder"),
        "text": TextCNN(4, (2, 3), SIZES["text"], 0.5, name="text_encoder"),
    }
    embedder = ModalityEmbedder(MODALITIES, encoders, encoder_rows=encoder_rows)
    embedder.build()
    _randomize(embedder)
    inputs = _inputs(np.random.default_rng(11), MIXED)

    compiled = tf.function(lambda x: embedder(x, training=False), jit_compile=True)(inputs)

    assert compiled.shape == (5, OUTPUT_SIZE)
    np.testing.assert_allclose(compiled.numpy(), embedder(inputs).numpy(), atol=1e-5)


def _slice(embeddings, name):
    return np.asarray(embeddings)[:, OFFSETS[name] : OFFSETS[name] + SIZES[name]]


def _zero_embedding(embedder, spec):
    """The encoder's own output on `minimum_length` all-zero frames: `h_miss` of Eq. 1."""
    encoder = embedder.encoders[spec.name]
    frames = encoder.minimum_length
    zeros = np.zeros((1, frames, spec.feature_dim), np.float32)
    return encoder(zeros, np.array([frames], np.int32)).numpy()


def _rows(inputs, rows):
    return {key: value[rows] for key, value in inputs.items()}


MIXED = {"acoustic": [3, 0, 6, 1, 0], "visual": [0, 2, 5, 0, 4], "text": [1, 6, 0, 0, 2]}


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_eager_and_symbolic_output_shapes(dtype):
    embedder = _embedder()

    embeddings = embedder(_inputs(np.random.default_rng(0), MIXED, dtype=dtype))
    symbolic = embedder(
        {
            **{spec.name: keras.Input((None, spec.feature_dim)) for spec in MODALITIES},
            **{spec.length_key: keras.Input((), dtype="int32") for spec in MODALITIES},
        }
    )

    assert embeddings.shape == (5, OUTPUT_SIZE)
    assert embeddings.dtype == tf.float32
    assert tuple(symbolic.shape) == (None, OUTPUT_SIZE)
    assert embedder.output_size == OUTPUT_SIZE


def test_concatenates_encoder_outputs_in_modality_order(encoder_rows):
    inputs = _inputs(np.random.default_rng(1), {"acoustic": [3, 2], "visual": [4, 1], "text": [5, 3]})
    embedder = _embedder(encoder_rows=encoder_rows)

    embeddings = embedder(inputs).numpy()

    for spec in MODALITIES:
        expected = embedder.encoders[spec.name](inputs[spec.name], inputs[spec.length_key]).numpy()
        np.testing.assert_allclose(_slice(embeddings, spec.name), expected, atol=1e-6)


def test_missing_modality_gets_encoder_output_on_zero_frames(encoder_rows):
    embedder = _embedder(encoder_rows=encoder_rows)

    embeddings = embedder(_inputs(np.random.default_rng(2), MIXED, padding=3.0)).numpy()

    for spec in MODALITIES:
        missing = np.asarray(MIXED[spec.name]) == 0
        expected = np.repeat(_zero_embedding(embedder, spec), missing.sum(), axis=0)
        assert np.abs(expected).max() > 0.1  # not trivially zero
        np.testing.assert_allclose(_slice(embeddings, spec.name)[missing], expected, atol=1e-6)


def test_missing_rows_draw_their_own_dropout_mask_in_training(encoder_rows):
    """The original encodes each row's zeros, so TextCNN's dropout differs row by row; sharing
    the pooled zeros must not share the mask."""
    embedder = _embedder(encoder_rows=encoder_rows)
    inputs = _inputs(np.random.default_rng(8), {"acoustic": [3] * 6, "visual": [2] * 6, "text": [0] * 6})

    trained = _slice(embedder(inputs, training=True), "text")
    inferred = _slice(embedder(inputs, training=False), "text")

    np.testing.assert_allclose(inferred, np.repeat(inferred[:1], 6, axis=0), atol=1e-6)
    assert len({row.tobytes() for row in trained}) > 1
    # Each row is the projection of the zero input's pooled features under some dropout mask.
    text = embedder.encoders["text"]
    pooled = text.pool(tf.zeros([1, text.minimum_length, MODALITIES[2].feature_dim]), tf.constant([text.minimum_length])).numpy()
    for row in trained:
        masks = [np.array(bits, np.float32) for bits in np.ndindex(*(2,) * pooled.shape[1])]
        candidates = [text.projection(pooled * mask / 0.5).numpy()[0] for mask in masks]
        assert min(np.abs(candidate - row).max() for candidate in candidates) < 1e-5


def test_missing_embedding_does_not_depend_on_batch_or_on_the_row_features(encoder_rows):
    embedder = _embedder(encoder_rows=encoder_rows)
    alone = embedder(
        _inputs(np.random.default_rng(3), {"acoustic": [0], "visual": [0], "text": [0]}, time=1)
    ).numpy()

    # Row 2 misses text and row 1 misses acoustic, with garbage features and a longer time axis.
    mixed = embedder(_inputs(np.random.default_rng(4), MIXED, time=9, padding=5.0)).numpy()

    np.testing.assert_allclose(_slice(mixed, "text")[2], _slice(alone, "text")[0], atol=1e-6)
    np.testing.assert_allclose(_slice(mixed, "acoustic")[1], _slice(alone, "acoustic")[0], atol=1e-6)
    np.testing.assert_allclose(_slice(mixed, "visual")[0], _slice(alone, "visual")[0], atol=1e-6)


def test_present_rows_equal_encoding_them_alone(encoder_rows):
    inputs = _inputs(np.random.default_rng(5), MIXED)
    embedder = _embedder(encoder_rows=encoder_rows)

    batch = embedder(inputs).numpy()

    for row in range(len(MIXED["acoustic"])):
        np.testing.assert_allclose(batch[row], embedder(_rows(inputs, [row])).numpy()[0], atol=1e-6)


@pytest.mark.parametrize("padding", [0.0, 4.0], ids=["zeros", "garbage"])
def test_embedding_does_not_depend_on_padding(encoder_rows, padding):
    lengths = {"acoustic": [3, 1], "visual": [2, 3], "text": [1, 3]}
    short = _inputs(np.random.default_rng(6), lengths, time=3)
    long = {}
    for spec in MODALITIES:
        extra = np.full((2, 7, spec.feature_dim), padding, np.float32)
        long[spec.name] = np.concatenate([short[spec.name], extra], axis=1)  # (2, 10, D)
        for row, length in enumerate(lengths[spec.name]):
            long[spec.name][row, length:] = padding
        long[spec.length_key] = short[spec.length_key]
    embedder = _embedder(encoder_rows=encoder_rows)

    np.testing.assert_allclose(embedder(long).numpy(), embedder(short).numpy(), atol=1e-6)


def test_time_shorter_than_text_kernel_works(encoder_rows):
    embedder = _embedder(encoder_rows=encoder_rows)
    inputs = _inputs(np.random.default_rng(7), {"acoustic": [1, 0], "visual": [1, 1], "text": [1, 0]}, time=1)

    embeddings = embedder(inputs).numpy()

    text = embedder.encoders["text"]
    padded = np.pad(inputs["text"][:1], [[0, 0], [0, text.minimum_length - 1], [0, 0]])
    np.testing.assert_allclose(
        _slice(embeddings, "text")[0], text(padded, np.array([1])).numpy()[0], atol=1e-6
    )
    np.testing.assert_allclose(
        _slice(embeddings, "text")[1], _zero_embedding(embedder, MODALITIES[2])[0], atol=1e-6
    )


@pytest.mark.parametrize("use_tf_function", [False, True], ids=["eager", "tf_function"])
def test_modality_missing_in_every_row(encoder_rows, use_tf_function):
    embedder = _embedder(encoder_rows=encoder_rows)
    inputs = _inputs(np.random.default_rng(8), {"acoustic": [2, 3, 1], "visual": [0, 0, 0], "text": [3, 1, 2]})
    call = tf.function(embedder) if use_tf_function else embedder

    embeddings = call(inputs).numpy()

    expected = np.repeat(_zero_embedding(embedder, MODALITIES[1]), 3, axis=0)
    np.testing.assert_allclose(_slice(embeddings, "visual"), expected, atol=1e-6)
    assert np.all(np.isfinite(embeddings))


def test_every_modality_missing_with_no_frames(encoder_rows):
    embedder = _embedder(encoder_rows=encoder_rows)
    inputs = _inputs(np.random.default_rng(15), {"acoustic": [0, 0], "visual": [0, 0], "text": [0, 0]}, time=0)

    embeddings = embedder(inputs).numpy()

    for spec in MODALITIES:
        expected = np.repeat(_zero_embedding(embedder, spec), 2, axis=0)
        np.testing.assert_allclose(_slice(embeddings, spec.name), expected, atol=1e-6)


def test_tf_function_matches_eager():
    inputs = _inputs(np.random.default_rng(9), MIXED)

    layer_checks.assert_tf_function_matches_eager(_embedder(), inputs, training=False)


def _statistics(rng, spec):
    return {
        "mean": rng.normal(size=spec.feature_dim).tolist(),
        "std": rng.uniform(0.5, 2.0, size=spec.feature_dim).tolist(),
    }


def test_normalization_equals_embedding_of_standardized_features(encoder_rows):
    rng = np.random.default_rng(10)
    stats = {"acoustic": _statistics(rng, MODALITIES[0]), "text": _statistics(rng, MODALITIES[2])}
    encoders = _encoders()
    normalized = _embedder(encoders, stats, encoder_rows)
    _randomize(normalized)
    plain = _embedder(encoders, encoder_rows=encoder_rows)  # the same encoder layers, no normalization
    inputs = _inputs(rng, MIXED, padding=2.0)

    standardized = dict(inputs)
    for name, values in stats.items():
        mean, std = np.asarray(values["mean"], np.float32), np.asarray(values["std"], np.float32)
        standardized[name] = (inputs[name] - mean) / std

    np.testing.assert_allclose(normalized(inputs).numpy(), plain(standardized).numpy(), atol=1e-5)
    # The visual modality has no statistics: used as it is.
    np.testing.assert_allclose(
        _slice(normalized(inputs), "visual"), _slice(plain(inputs), "visual"), atol=1e-6
    )


def test_missing_embedding_with_normalization_is_encoder_on_zeros(encoder_rows):
    rng = np.random.default_rng(11)
    embedder = _embedder(encoder_rows=encoder_rows, normalization={"acoustic": _statistics(rng, MODALITIES[0])})

    embeddings = embedder(_inputs(rng, MIXED)).numpy()

    np.testing.assert_allclose(
        _slice(embeddings, "acoustic")[[1, 4]],
        np.repeat(_zero_embedding(embedder, MODALITIES[0]), 2, axis=0),
        atol=1e-6,
    )


def test_config_round_trip():
    rng = np.random.default_rng(12)
    embedder = _embedder(normalization={"acoustic": _statistics(rng, MODALITIES[0])})
    inputs = _inputs(rng, MIXED)

    _, restored = layer_checks.assert_config_round_trip(embedder, inputs)

    assert isinstance(restored, ModalityEmbedder)
    assert restored.modalities == MODALITIES
    assert restored.normalization == embedder.normalization
    assert {name: type(layer) for name, layer in restored.encoders.items()} == {
        "acoustic": SequenceEncoder, "visual": SequenceEncoder, "text": TextCNN
    }


def _functional(embedder):
    inputs = {}
    for spec in MODALITIES:
        inputs[spec.name] = keras.Input((None, spec.feature_dim), name=spec.name)
        inputs[spec.length_key] = keras.Input((), dtype="int32", name=spec.length_key)
    return keras.Model(inputs, embedder(inputs))


def test_keras_save_and_load(tmp_path):
    rng = np.random.default_rng(13)
    model = _functional(_embedder(normalization={"acoustic": _statistics(rng, MODALITIES[0])}))
    inputs = _inputs(rng, MIXED)

    layer_checks.assert_keras_save_and_load(model, tmp_path, "embedder.keras", inputs)


def test_one_training_step_changes_every_weight(encoder_rows):
    model = _functional(_embedder(encoder_rows=encoder_rows))
    inputs = _inputs(np.random.default_rng(14), MIXED)

    layer_checks.assert_one_training_step_changes_every_weight(
        model, inputs, np.ones((5, OUTPUT_SIZE), np.float32), loss="mse"
    )


@pytest.mark.parametrize(
    "names", [("acoustic", "visual"), ("acoustic", "visual", "text", "video")], ids=["missing", "extra"]
)
def test_rejects_encoders_not_matching_modalities(names):
    encoders = {name: SequenceEncoder(4) for name in names}
    with pytest.raises(ValueError, match=r"`encoders` must have one encoder per modality"):
        ModalityEmbedder(MODALITIES, encoders)


def test_rejects_normalization_of_unknown_modality():
    stats = {"video": {"mean": [0.0], "std": [1.0]}}
    with pytest.raises(ValueError, match=r"`normalization` names unknown modalities \['video'\]"):
        ModalityEmbedder(MODALITIES, _encoders(), stats)


@pytest.mark.parametrize("field", ["mean", "std"])
def test_rejects_statistics_of_wrong_length(field):
    stats = {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}
    stats[field] = stats[field][:2]
    with pytest.raises(ValueError, match=r"Normalization statistics of 'acoustic' must have 3 values"):
        ModalityEmbedder(MODALITIES, _encoders(), {"acoustic": stats})


def _traced_op_types(embedder, inputs):
    """The op types of the graph `embedder` traces for `inputs` (training mode)."""
    graph = tf.function(lambda x: embedder(x, training=True)).get_concrete_function(inputs).graph
    return {op.type for op in graph.get_operations()}


def test_every_row_and_present_rows_give_the_same_embeddings_and_gradients():
    encoders = _encoders()
    present = _embedder(encoders, encoder_rows="present")
    _randomize(present)
    every = _embedder(encoders, encoder_rows="all")  # the same encoder layers
    inputs = _inputs(np.random.default_rng(16), MIXED, time=7, padding=3.0)
    weights = tf.constant(np.random.default_rng(17).normal(size=(5, OUTPUT_SIZE)), tf.float32)

    def value_and_gradients(embedder):
        with tf.GradientTape() as tape:
            embeddings = embedder(inputs, training=False)
            total = tf.reduce_sum(embeddings * weights)
        return embeddings, tape.gradient(total, embedder.trainable_variables)

    present_embeddings, present_gradients = value_and_gradients(present)
    every_embeddings, every_gradients = value_and_gradients(every)

    np.testing.assert_allclose(every_embeddings.numpy(), present_embeddings.numpy(), atol=1e-5)
    assert len(every_gradients) == len(present_gradients) > 0
    for mine, theirs in zip(every_gradients, present_gradients):
        np.testing.assert_allclose(tf.convert_to_tensor(mine).numpy(), tf.convert_to_tensor(theirs).numpy(), atol=1e-5)


def test_every_row_strategy_has_no_data_dependent_shapes():
    """"all" must not gather the present rows or scatter them back: those are what cost a
    device-to-host sync per encoder on a GPU."""
    inputs = _inputs(np.random.default_rng(18), MIXED)

    present_ops = _traced_op_types(_embedder(encoder_rows="present"), inputs)
    every_ops = _traced_op_types(_embedder(encoder_rows="all"), inputs)

    assert {"Where", "TensorScatterUpdate"} <= present_ops
    assert not {"Where", "TensorScatterUpdate", "GatherV2"} & every_ops


def test_auto_resolves_by_whether_a_gpu_is_visible(monkeypatch):
    from mmin_tf.layers import modality_embedder

    assert modality_embedder.resolve_encoder_rows("present") is EncoderRows.PRESENT
    assert modality_embedder.resolve_encoder_rows(EncoderRows.ALL) is EncoderRows.ALL
    assert modality_embedder.resolve_encoder_rows(EncoderRows.AUTO) is EncoderRows.PRESENT  # this CPU-only machine
    inputs = _inputs(np.random.default_rng(19), MIXED)
    assert "TensorScatterUpdate" in _traced_op_types(_embedder(encoder_rows="auto"), inputs)

    monkeypatch.setattr(
        tf.config, "list_physical_devices", lambda kind=None: ["/physical_device:GPU:0"] if kind == "GPU" else []
    )
    assert modality_embedder.resolve_encoder_rows("auto") is EncoderRows.ALL
    assert modality_embedder.resolve_encoder_rows(EncoderRows.PRESENT) is EncoderRows.PRESENT
    # The layer follows the resolution when it traces: no scatter where a GPU is visible.
    assert "TensorScatterUpdate" not in _traced_op_types(_embedder(encoder_rows="auto"), inputs)


def test_encoder_rows_survives_the_config_and_rejects_unknown_values():
    embedder = _embedder(encoder_rows="all")

    restored = ModalityEmbedder.from_config(embedder.get_config())

    assert embedder.get_config()["encoder_rows"] == "all"  # JSON-serializable
    assert restored.encoder_rows is EncoderRows.ALL
    with pytest.raises(ValueError, match=r"`encoder_rows` must be one of \['auto', 'present', 'all'\]. Received: 'dense'"):
        embedder.encoder_rows = "dense"
    with pytest.raises(ValueError, match=r"`encoder_rows` must be one of"):
        ModalityEmbedder(MODALITIES, _encoders(), encoder_rows="every")
