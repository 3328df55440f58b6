"""Tests for the record format (`mmin_tf.data.format`) and `DatasetWriter`."""

import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from mmin_tf.data import format as format_lib
from mmin_tf.data.format import DataError, Utterance, serialize_utterance, validate_utterance
from mmin_tf.data.writer import DatasetWriter
from mmin_tf.modalities import EncoderKind, ModalitySpec

MODALITIES = (
    ModalitySpec("acoustic", "a", 3, EncoderKind.LSTM),
    ModalitySpec("visual", "v", 4, EncoderKind.LSTM),
    ModalitySpec("text", "t", 5, EncoderKind.TEXT_CNN),
)
LABEL_NAMES = ("happy", "anger", "sadness", "neutral")
# Two groups of two speakers: enough for speaker-independent folds.
SPEAKERS = (("Ses01", "Ses01F"), ("Ses01", "Ses01M"), ("Ses02", "Ses02F"), ("Ses02", "Ses02M"))


def _utterance(index, lengths=(2, 3, 1), label=None, source="<memory>"):
    """Utterance `index` with float32 features of the given lengths (acoustic, visual, text)."""
    rng = np.random.default_rng(index)
    group, speaker = SPEAKERS[index % len(SPEAKERS)]
    return Utterance(
        utterance_id=f"{speaker}_{index:03d}",
        speaker=speaker,
        group=group,
        label=index % len(LABEL_NAMES) if label is None else label,
        features={
            spec.name: rng.normal(size=(length, spec.feature_dim)).astype(np.float32)
            for spec, length in zip(MODALITIES, lengths)
        },
        source=source,
    )


def _names(*parts):
    """A regex that matches a message containing every one of `parts`, in any order."""
    return "(?s)" + "".join(f"(?=.*{re.escape(part)})" for part in parts)


def _writer(out_dir, **kwargs):
    kwargs.setdefault("utterances_per_shard", 2)
    return DatasetWriter(
        str(out_dir), name="tiny", modalities=MODALITIES, label_names=LABEL_NAMES, **kwargs
    )


# Round trip.


def test_serialize_then_parse_round_trips_exactly():
    utterance = _utterance(1, lengths=(2, 3, 1))

    parsed = format_lib.parse_sequence_example(
        tf.constant(format_lib.serialize_utterance(utterance, MODALITIES)), MODALITIES
    )

    assert sorted(parsed) == sorted([
        "utterance_id", "speaker", "group", "label",
        "acoustic", "acoustic_length", "visual", "visual_length", "text", "text_length",
    ])
    for key in ("utterance_id", "speaker", "group"):
        assert parsed[key].dtype == tf.string and parsed[key].shape == ()
    assert parsed["utterance_id"].numpy() == b"Ses01M_001"
    assert parsed["speaker"].numpy() == b"Ses01M"
    assert parsed["group"].numpy() == b"Ses01"
    assert parsed["label"].dtype == tf.int32 and parsed["label"].shape == ()
    assert int(parsed["label"]) == 1
    for spec, length in zip(MODALITIES, (2, 3, 1)):
        features = parsed[spec.name]
        assert features.dtype == tf.float32
        assert features.shape == (length, spec.feature_dim)
        assert features.numpy().tobytes() == utterance.features[spec.name].tobytes()
        assert parsed[spec.length_key].dtype == tf.int32 and parsed[spec.length_key].shape == ()
        assert int(parsed[spec.length_key]) == length


def test_parse_batch_pads_with_zeros_and_reports_lengths():
    short, long = _utterance(0, lengths=(1, 1, 1)), _utterance(1, lengths=(3, 2, 4))
    serialized = tf.constant(
        [format_lib.serialize_utterance(u, MODALITIES) for u in (short, long)]
    )

    parsed = format_lib.parse_sequence_examples(serialized, MODALITIES)

    assert parsed["label"].numpy().tolist() == [0, 1]
    for spec, long_length in zip(MODALITIES, (3, 2, 4)):
        assert parsed[spec.name].shape == (2, long_length, spec.feature_dim)
        assert parsed[spec.length_key].numpy().tolist() == [1, long_length]
        np.testing.assert_array_equal(parsed[spec.name][0, :1], short.features[spec.name])
        np.testing.assert_array_equal(parsed[spec.name][0, 1:], 0.0)
        np.testing.assert_array_equal(parsed[spec.name][1], long.features[spec.name])


def test_absent_feature_list_parses_as_length_zero():
    utterance = _utterance(2)
    without_visual = Utterance(
        utterance.utterance_id, utterance.speaker, utterance.group, utterance.label,
        {name: value for name, value in utterance.features.items() if name != "visual"},
    )

    parsed = format_lib.parse_sequence_example(
        tf.constant(format_lib.serialize_utterance(without_visual, MODALITIES)), MODALITIES
    )

    assert int(parsed["visual_length"]) == 0
    assert parsed["visual"].shape == (0, 4)
    assert int(parsed["acoustic_length"]) == 2
    np.testing.assert_array_equal(parsed["text"], utterance.features["text"])


def test_parse_inside_dataset_map():
    utterances = [_utterance(i, lengths=(i + 1, 2, 1)) for i in range(3)]
    records = [format_lib.serialize_utterance(u, MODALITIES) for u in utterances]

    dataset = tf.data.Dataset.from_tensor_slices(records).map(
        lambda record: format_lib.parse_sequence_example(record, MODALITIES)
    )

    assert dataset.element_spec["acoustic"].shape.as_list() == [None, 3]
    for parsed, utterance in zip(dataset, utterances):
        assert parsed["utterance_id"].numpy().decode() == utterance.utterance_id
        np.testing.assert_array_equal(parsed["acoustic"], utterance.features["acoustic"])


# validate_utterance.


def _replace(utterance, **changes):
    fields = {
        "utterance_id": utterance.utterance_id, "speaker": utterance.speaker,
        "group": utterance.group, "label": utterance.label,
        "features": dict(utterance.features), "source": utterance.source,
    }
    fields.update(changes)
    return Utterance(**fields)


def _with_feature(name, value):
    def change(utterance):
        return _replace(utterance, features={**utterance.features, name: value})
    return change


BAD_UTTERANCES = {
    "label_negative": (lambda u: _replace(u, label=-1), "label -1 is outside [0, 4)"),
    "label_too_large": (lambda u: _replace(u, label=4), "label 4 is outside [0, 4)"),
    "no_modality": (
        lambda u: _replace(u, features={}),
        "no modality at all; an utterance needs at least one of ['acoustic', 'text', 'visual']",
    ),
    "extra_modality": (
        _with_feature("depth", np.zeros((1, 2), np.float32)),
        "features for unknown modalities ['depth']; the dataset's modalities are ['acoustic', 'text', 'visual']",
    ),
    "wrong_dim": (
        _with_feature("visual", np.zeros((2, 3), np.float32)),
        "visual features must have shape (time, 4), received (2, 3)",
    ),
    "one_dimensional": (
        _with_feature("text", np.zeros(5, np.float32)),
        "text features must have shape (time, 5), received (5,)",
    ),
    "empty": (
        _with_feature("acoustic", np.zeros((0, 3), np.float32)), "acoustic sequence is empty"),
    "nan": (
        _with_feature("visual", np.array([[0, 0, 0, 0], [0, np.nan, 0, 0]], np.float32)),
        "visual features contain NaN or Inf (frames [1])",
    ),
    "inf": (
        _with_feature("text", np.full((3, 5), np.inf, np.float32)),
        "text features contain NaN or Inf (frames [0, 1, 2])",
    ),
    "float32_overflow": (
        _with_feature("acoustic", np.full((1, 3), 1e300, np.float64)),
        "acoustic features contain NaN or Inf",
    ),
}


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("case", sorted(BAD_UTTERANCES))
def test_validate_utterance_errors_name_utterance_and_source(case):
    change, problem = BAD_UTTERANCES[case]
    utterance = change(_utterance(5, source="corpus.csv line 7"))

    with pytest.raises(DataError, match=_names("'Ses01M_005'", "corpus.csv line 7", problem)):
        format_lib.validate_utterance(utterance, MODALITIES, len(LABEL_NAMES))


def test_validate_utterance_empty_id_names_source():
    utterance = _replace(_utterance(0, source="corpus.csv line 3"), utterance_id="")
    with pytest.raises(DataError, match=_names("Empty utterance id", "corpus.csv line 3")):
        format_lib.validate_utterance(utterance, MODALITIES, len(LABEL_NAMES))


def test_validate_utterance_accepts_a_good_one():
    format_lib.validate_utterance(_utterance(0), MODALITIES, len(LABEL_NAMES))


# DatasetWriter.


def _read_all(out_dir):
    info = format_lib.load_info(str(out_dir))
    dataset = tf.data.TFRecordDataset(format_lib.shard_paths(str(out_dir), info))
    return [format_lib.parse_sequence_example(record, MODALITIES) for record in dataset]


def test_writer_shards_info_and_folds(tmp_path):
    lengths = [(1, 2, 1), (2, 2, 3), (3, 1, 2), (4, 3, 1), (5, 1, 1)]
    utterances = [_utterance(i, lengths=lengths[i]) for i in range(5)]
    out_dir = tmp_path / "out"

    with _writer(out_dir, utterances_per_shard=2, source={"importer": "test"}) as writer:
        for utterance in utterances:
            writer.write(utterance)
        info = writer.finish()

    assert os.listdir(tmp_path) == ["out"]
    shards = ["records-00000-of-00003.tfrecord", "records-00001-of-00003.tfrecord",
              "records-00002-of-00003.tfrecord"]
    assert sorted(os.listdir(out_dir)) == sorted(["dataset.json", "folds.json", *shards])
    assert [len(list(tf.data.TFRecordDataset(str(out_dir / s)))) for s in shards] == [2, 2, 1]
    assert [p["utterance_id"].numpy().decode() for p in _read_all(out_dir)] == [
        u.utterance_id for u in utterances
    ]

    with open(out_dir / "dataset.json") as f:
        written = json.load(f)
    assert written["format_version"] == format_lib.FORMAT_VERSION
    assert written["name"] == "tiny"
    assert written["num_utterances"] == 5
    assert written["shards"] == shards
    assert written["label_names"] == list(LABEL_NAMES)
    assert written["modalities"] == [spec.to_json() for spec in MODALITIES]
    assert written["source"] == {"importer": "test"}
    for index, spec in enumerate(MODALITIES):
        values = [length[index] for length in lengths]
        stats = written["length_statistics"][spec.name]
        assert (stats["min"], stats["max"]) == (min(values), max(values))
        assert stats["mean"] == pytest.approx(np.mean(values))
        assert set(stats["quantiles"]) == {"0.5", "0.75", "0.9", "0.95", "0.99"}
    assert written["length_statistics"]["acoustic"]["quantiles"]["0.5"] == 3
    # Utterances 0 (F, happy), 4 (F, happy) in Ses01F; 1 (M, anger) in Ses01M;
    # 2 (sadness) in Ses02F; 3 (neutral) in Ses02M.
    assert written["fold_counts"] == {
        "1": {
            "train": {"happy": 0, "anger": 0, "sadness": 1, "neutral": 1},
            "validation": {"happy": 0, "anger": 1, "sadness": 0, "neutral": 0},
            "test": {"happy": 2, "anger": 0, "sadness": 0, "neutral": 0},
        },
        "2": {
            "train": {"happy": 0, "anger": 0, "sadness": 1, "neutral": 1},
            "validation": {"happy": 2, "anger": 0, "sadness": 0, "neutral": 0},
            "test": {"happy": 0, "anger": 1, "sadness": 0, "neutral": 0},
        },
        "3": {
            "train": {"happy": 2, "anger": 1, "sadness": 0, "neutral": 0},
            "validation": {"happy": 0, "anger": 0, "sadness": 0, "neutral": 1},
            "test": {"happy": 0, "anger": 0, "sadness": 1, "neutral": 0},
        },
        "4": {
            "train": {"happy": 2, "anger": 1, "sadness": 0, "neutral": 0},
            "validation": {"happy": 0, "anger": 0, "sadness": 1, "neutral": 0},
            "test": {"happy": 0, "anger": 0, "sadness": 0, "neutral": 1},
        },
    }
    assert info == format_lib.load_info(str(out_dir))
    assert info.fold_names == ("1", "2", "3", "4")
    assert format_lib.load_folds(str(out_dir))["1"]["test"] == ["Ses01F_000", "Ses01F_004"]


def test_writer_with_given_folds(tmp_path):
    folds = {"only": {"train": ["Ses01F_000", "Ses01M_001"], "validation": ["Ses02F_002"],
                      "test": ["Ses02M_003"]}}
    with _writer(tmp_path / "out") as writer:
        for index in range(4):
            writer.write(_utterance(index))
        info = writer.finish(folds)

    assert format_lib.load_folds(str(tmp_path / "out")) == folds
    assert info.fold_counts["only"]["train"] == {
        "happy": 1, "anger": 1, "sadness": 0, "neutral": 0,
    }


def test_writer_refuses_existing_out_dir(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(FileExistsError, match=_names(str(tmp_path / "out"), "already exists")):
        with _writer(tmp_path / "out"):
            pass
    assert os.listdir(tmp_path) == ["out"]
    assert os.listdir(tmp_path / "out") == []


def test_error_mid_way_leaves_nothing(tmp_path):
    bad = _replace(_utterance(3), label=9)
    with pytest.raises(DataError, match=_names("'Ses02M_003'", "label 9")):
        with _writer(tmp_path / "out") as writer:
            for utterance in [_utterance(0), _utterance(1), _utterance(2), bad]:
                writer.write(utterance)
            writer.finish()

    assert os.listdir(tmp_path) == []


def test_caller_exception_leaves_nothing(tmp_path):
    with pytest.raises(KeyError, match="caller"):
        with _writer(tmp_path / "out") as writer:
            writer.write(_utterance(0))
            raise KeyError("caller")

    assert os.listdir(tmp_path) == []


def test_error_in_finish_leaves_nothing(tmp_path):
    folds = {"1": {"train": ["Ses01F_000"], "validation": ["Ses01M_001"], "test": ["nobody"]}}
    with pytest.raises(DataError, match=_names("'nobody'", "not in the dataset")):
        with _writer(tmp_path / "out") as writer:
            writer.write(_utterance(0))
            writer.write(_utterance(1))
            writer.finish(folds)

    assert os.listdir(tmp_path) == []


def test_without_finish_raises_and_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="closed without finish"):
        with _writer(tmp_path / "out") as writer:
            for index in range(3):
                writer.write(_utterance(index))

    assert os.listdir(tmp_path) == []


def test_duplicate_id_names_both_sources(tmp_path):
    first = _utterance(0, source="a.csv line 2")
    second = _replace(_utterance(4), utterance_id=first.utterance_id, source="b.csv line 9")
    with pytest.raises(DataError, match=_names("'Ses01F_000'", "a.csv line 2", "b.csv line 9")):
        with _writer(tmp_path / "out") as writer:
            writer.write(first)
            writer.write(second)
    assert os.listdir(tmp_path) == []


def test_finish_without_utterances(tmp_path):
    with pytest.raises(DataError, match="No utterances were written"):
        with _writer(tmp_path / "out") as writer:
            writer.finish()
    assert os.listdir(tmp_path) == []


def test_write_outside_context_manager(tmp_path):
    with pytest.raises(RuntimeError, match="as a context manager"):
        _writer(tmp_path / "out").write(_utterance(0))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"utterances_per_shard": 0}, "`utterances_per_shard` must be >= 1. Received: 0"),
        ({"label_names": ()}, "`label_names` must be non-empty and unique"),
        ({"label_names": ("a", "b", "a")}, "`label_names` must be non-empty and unique"),
    ],
)
def test_writer_configuration_errors(tmp_path, kwargs, match):
    arguments = {"name": "tiny", "modalities": MODALITIES, "label_names": LABEL_NAMES}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=re.escape(match)):
        DatasetWriter(str(tmp_path / "out"), **arguments)


def test_load_info_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset.json not found"):
        format_lib.load_info(str(tmp_path))
    (tmp_path / "dataset.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(DataError, match="Unsupported dataset format_version 99"):
        format_lib.load_info(str(tmp_path))


def test_an_absent_modality_round_trips_as_zero_frames(tmp_path):
    absent = _replace(_utterance(1), features={k: v for k, v in _utterance(1).features.items() if k != "text"})
    validate_utterance(absent, MODALITIES, 4)
    parsed = format_lib.parse_sequence_example(tf.constant(serialize_utterance(absent, MODALITIES)), MODALITIES)
    assert int(parsed["text_length"]) == 0 and parsed["text"].shape == (0, 5)
    np.testing.assert_array_equal(parsed["visual"].numpy(), absent.features["visual"])


def test_a_modality_absent_everywhere_is_refused(tmp_path):
    with pytest.raises(DataError, match=r"Modalities \['text'\] are absent from every utterance"):
        with _writer(tmp_path / "out") as writer:
            for index in range(8):
                utterance = _utterance(index)
                writer.write(_replace(utterance, features={k: v for k, v in utterance.features.items() if k != "text"}))
            writer.finish()
    assert os.listdir(tmp_path) == []


def test_datasets_without_presence_counts_read_as_complete():
    info = format_lib.DatasetInfo(
        name="x", modalities=MODALITIES, label_names=("a", "b"), num_utterances=5, shards=(),
        length_statistics={}, fold_counts={"1": {"train": {"a": 2, "b": 1}, "validation": {"a": 1, "b": 0},
                                                 "test": {"a": 0, "b": 1}}}, source={})
    assert info.presence == {"acoustic": 5, "visual": 5, "text": 5} and info.is_complete
    assert info.fold_presence["1"]["train"] == {"acoustic": 3, "visual": 3, "text": 3}
    assert format_lib.DatasetInfo.from_json(info.to_json()) == info
