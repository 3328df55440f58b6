"""Property-based tests of the dataset readers and the manifest importer: random bytes, random
SequenceExamples, overwritten shards, random CSV cells and random `.npy` arrays give either a
correct result or a clear error naming the problem, never a wrong result or another exception."""

import csv
import os
import shutil
import tempfile

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mmin_tf.data import format as format_lib
from mmin_tf.data import pipeline
from mmin_tf.data.format import DataError, validate_utterance
from mmin_tf.data.manifest import manifest_labels, read_manifest
from mmin_tf.modalities import EncoderKind, ModalitySpec
from tests import tiny_runs

FUZZ = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MODALITIES = (
    ModalitySpec("acoustic", "a", 3, EncoderKind.LSTM),
    ModalitySpec("visual", "v", 2, EncoderKind.LSTM),
    ModalitySpec("text", "t", 4, EncoderKind.TEXT_CNN),
)
LABELS = ("happy", "sad")
CONTEXT = {format_lib.UTTERANCE_ID: "bytes", format_lib.SPEAKER: "bytes", format_lib.GROUP: "bytes",
           format_lib.LABEL: "int64"}


@FUZZ
@given(records=st.lists(st.binary(max_size=60), min_size=1, max_size=4))
def test_random_bytes_parse_or_fail_with_invalid_argument(records):
    try:
        parsed = format_lib.parse_sequence_examples(tf.constant(records), MODALITIES)
    except tf.errors.InvalidArgumentError as error:
        assert error.message.strip()
        return
    for spec in MODALITIES:  # bytes that happen to be a SequenceExample (b"" is an empty one)
        assert parsed[spec.name].shape[0] == len(records) and parsed[spec.name].shape[2] == spec.feature_dim
        assert parsed[spec.length_key].dtype == tf.int32 and np.all(parsed[spec.length_key].numpy() >= 0)


def _feature(kind, values):
    if kind == "float":
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))
    if kind == "int64":
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(v).encode() for v in values]))


kinds = st.sampled_from(["float", "float", "float", "int64", "bytes"])
finite = st.floats(min_value=-1e6, max_value=1e6, width=32)


@st.composite
def sequence_examples(draw):
    """(serialized SequenceExample, expected parse or None when the format is broken)."""
    example = tf.train.SequenceExample()
    well_formed = True
    expected = {format_lib.UTTERANCE_ID: b"", format_lib.SPEAKER: b"", format_lib.GROUP: b"", format_lib.LABEL: -1}
    for key, kind in CONTEXT.items():
        if draw(st.booleans()):
            continue  # absent: the default
        chosen = draw(st.sampled_from([kind, kind, "float", "bytes", "int64"]))
        count = draw(st.sampled_from([1, 1, 1, 0, 2]))
        values = draw(st.lists(st.integers(0, 9), min_size=count, max_size=count))
        example.context.feature[key].CopyFrom(_feature(chosen, values))
        if chosen != kind or count != 1:
            well_formed = False
        else:
            expected[key] = str(values[0]).encode() if kind == "bytes" else values[0]
    for spec in MODALITIES + (ModalitySpec("other", "o", 1, EncoderKind.LSTM),):
        if draw(st.booleans()):
            expected[spec.name] = np.zeros((0, spec.feature_dim), np.float32)
            continue
        frames = []
        feature_list = example.feature_lists.feature_list[spec.name]
        for _ in range(draw(st.integers(0, 3))):
            kind = draw(kinds)
            width = draw(st.sampled_from([spec.feature_dim] * 4 + [spec.feature_dim + 1, 0]))
            values = draw(st.lists(finite, min_size=width, max_size=width))
            feature_list.feature.append(_feature(kind, values))
            if spec.name != "other" and (kind != "float" or width != spec.feature_dim):
                well_formed = False
            frames.append(values)
        expected[spec.name] = np.asarray(frames, np.float32).reshape(len(frames), spec.feature_dim) \
            if well_formed and spec.name != "other" else None
    return example.SerializeToString(), (expected if well_formed else None)


@FUZZ
@given(example=sequence_examples())
def test_random_sequence_examples_parse_exactly_or_fail_naming_the_feature(example):
    serialized, expected = example
    try:
        parsed = format_lib.parse_sequence_example(tf.constant(serialized), MODALITIES)
    except tf.errors.InvalidArgumentError as error:
        assert expected is None, f"a well-formed example was refused: {error.message}"
        assert any(key in error.message for key in [spec.name for spec in MODALITIES] + list(CONTEXT)), error.message
        return
    assert expected is not None, "a broken example was parsed"
    for key in CONTEXT:
        assert parsed[key].numpy() == expected[key]
    for spec in MODALITIES:
        length = int(parsed[spec.length_key])
        np.testing.assert_array_equal(parsed[spec.name].numpy()[:length], expected[spec.name])
        assert length == len(expected[spec.name])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A 40-utterance tiny dataset in 3 shards, and its records as written."""
    path = str(tmp_path_factory.mktemp("readers") / "data")
    info = tiny_runs.write_dataset(path)
    return path, info


@FUZZ
@given(data=st.data())
def test_an_overwritten_shard_reads_correctly_or_fails_with_data_loss(dataset, data):
    """Random bytes, a truncated or bit-flipped shard fail with DataLossError; records in valid
    TFRecord framing are parsed as what they are or fail with InvalidArgumentError."""
    source, info = dataset
    with tempfile.TemporaryDirectory() as temp_dir:
        path = os.path.join(temp_dir, "data")
        shutil.copytree(source, path)
        shard = format_lib.shard_paths(path, info)[data.draw(st.integers(0, len(info.shards) - 1))]
        with open(shard, "rb") as f:
            original = f.read()
        others = info.num_utterances - sum(1 for _ in tf.data.TFRecordDataset(shard))
        kind = data.draw(st.sampled_from(["random", "truncated", "flipped", "records", "examples", "same"]))
        records = []
        if kind == "random":  # under 12 bytes: the known gap below
            content = data.draw(st.binary(min_size=12, max_size=200))
        elif kind == "truncated":  # not within a record header's 12 bytes: the known gap below
            cut = data.draw(st.integers(1, len(original) - 1))
            assume(not any(start <= cut < start + 12 for start in _record_starts(original)))
            content = original[:cut]
        elif kind == "flipped":
            position = data.draw(st.integers(0, len(original) - 1))
            content = (original[:position] + bytes([original[position] ^ (1 << data.draw(st.integers(0, 7)))])
                       + original[position + 1:])
        else:
            content = original
        with open(shard, "wb") as f:
            f.write(content)
        if kind in ("records", "examples"):  # valid TFRecord framing, random payloads
            records = data.draw(st.lists(st.binary(max_size=50) if kind == "records" else
                                         sequence_examples().map(lambda pair: pair[0]), min_size=1, max_size=3))
            with tf.io.TFRecordWriter(shard) as writer:
                for record in records:
                    writer.write(record)
        try:
            ids = _ids(path, info)
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
            assert kind not in ("same",), error.message
            assert any(words in error.message for words in (
                "corrupted record", "truncated record", "Invalid protocol message", "Feature list",
                "Data types don't match", "Key:", "Name:")), error.message
            return
        assert kind in ("same", "records", "examples"), f"a {kind} shard was read without an error"
        assert len(ids) == (info.num_utterances if kind == "same" else others + len(records))


def _record_starts(content: bytes) -> list[int]:
    """Offsets of the TFRecord frames (8-byte length, 4-byte CRC, data, 4-byte CRC) in `content`."""
    starts, offset = [], 0
    while offset + 8 <= len(content):
        starts.append(offset)
        offset += 12 + int.from_bytes(content[offset:offset + 8], "little") + 4
    return starts


@pytest.mark.xfail(strict=True, reason="TFRecordDataset ends a file silently where fewer than 12 bytes of a record "
                   "header remain, and read_split (mmin_tf/data/pipeline.py, not changed here) does not compare the "
                   "records read with dataset.json's num_utterances: such a shard reads as complete")
@pytest.mark.parametrize("keep", ["one_record", "one_record_and_5_bytes", "5_bytes"])
def test_a_shard_cut_where_a_record_header_begins_is_noticed(dataset, tmp_path, keep):
    source, info = dataset
    path = str(tmp_path / "data")
    shutil.copytree(source, path)
    shard = format_lib.shard_paths(path, info)[0]
    with open(shard, "rb") as f:
        original = f.read()
    second = _record_starts(original)[1]
    content = {"one_record": original[:second], "one_record_and_5_bytes": original[:second + 5],
               "5_bytes": original[:5]}[keep]
    with open(shard, "wb") as f:
        f.write(content)
    with pytest.raises((DataError, tf.errors.DataLossError)):
        _ids(path, info)


def _ids(path, info):
    return [example[format_lib.UTTERANCE_ID].numpy() for example in pipeline.read_split(path, info)]


# --- the manifest importer -------------------------------------------------------------------

array_dtypes = st.sampled_from(["float32", "float64", "float16", "int8", "int64", "uint16", "bool", "complex64",
                                "U3", "object", "record"])
cell_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8) | st.sampled_from(
    [" happy ", "sad", "\x00", "a,b", 'say "hi"', "line\nbreak", "..", "/", "/etc/hostname", "x" * 200])


@st.composite
def npy_array(draw):
    dtype = draw(array_dtypes)
    shape = draw(st.sampled_from([(2, 3), (1, 3), (3, 2), (2, 4), (0, 3), (3,), (), (1, 2, 3)]))
    if dtype == "object":
        return np.empty(shape, dtype=object)
    if dtype == "record":
        return np.zeros(shape, dtype=[("x", "f4")])
    values = np.asarray(draw(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64) | st.sampled_from(
        [1e39, 0.5, -2.0, 7.0]), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))).reshape(shape)
    with np.errstate(all="ignore"):
        if dtype.startswith(("int", "uint", "bool")):
            values = np.nan_to_num(values, nan=0.0, posinf=1.0, neginf=-1.0).clip(-100, 100)
        return values.astype(dtype)


def _expected_features(array, spec):
    """The utterance's features for a loadable array, or None where the import must refuse it."""
    if array.dtype.kind not in "fiu" or array.ndim != 2 or array.shape[1] != spec.feature_dim or not len(array):
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        features = array.astype(np.float32)
    return features if np.all(np.isfinite(features)) else None


@st.composite
def manifests(draw):
    """(rows of cells, {file name: array}, expected utterances or None when the import must fail)."""
    arrays = {f"f{index}.npy": draw(npy_array()) for index in range(draw(st.integers(1, 4)))}
    names = sorted(arrays) + ["missing.npy", "", "", "sub"]
    rows, expected = [], []
    for index in range(draw(st.integers(1, 4))):
        row = [draw(st.sampled_from([f"u{index}", f"u{index}"]) | cell_text),
               draw(st.just(f"s{index}") | cell_text), draw(st.just("g") | cell_text),
               draw(st.sampled_from(LABELS) | cell_text)]
        row += [draw(st.sampled_from(names) | cell_text) for _ in MODALITIES]
        if draw(st.integers(0, 9)) == 0:
            row = row[:draw(st.integers(0, len(row) - 1))] if draw(st.booleans()) else row + ["extra"]
        rows.append(row)
        expected.append(_expected_row(row, arrays))
    failed = any(entry is False for entry in expected)
    return rows, arrays, None if failed else [entry for entry in expected if entry is not None]


def _expected_row(row, arrays):
    """An utterance `(id, label index, {modality: features})`, None for a skipped blank line,
    False where the import must stop with a DataError."""
    cells = [cell.strip() for cell in row]
    if not any(cells):
        return None
    if len(row) != 4 + len(MODALITIES):
        return False
    utterance_id, speaker, group, label = cells[:4]
    if not (utterance_id and speaker and group and label in LABELS):
        return False
    features = {}
    for spec, cell in zip(MODALITIES, cells[4:]):
        if not cell:
            continue
        if cell not in arrays:
            return False  # not found, a directory, or not a .npy file
        features[spec.name] = _expected_features(arrays[cell], spec)
        if features[spec.name] is None:
            return False
    return (utterance_id, LABELS.index(label), features) if features else False


@FUZZ
@given(manifest=manifests())
def test_random_manifests_import_exactly_or_fail_with_a_data_error(manifest):
    rows, arrays, expected = manifest
    with tempfile.TemporaryDirectory() as directory:
        for name, array in arrays.items():
            np.save(os.path.join(directory, name), array, allow_pickle=True)
        os.makedirs(os.path.join(directory, "sub"))
        path = os.path.join(directory, "corpus.csv")
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["utterance_id", "speaker", "group", "label"] + [spec.name for spec in MODALITIES])
            writer.writerows(rows)
        try:
            utterances = list(read_manifest(path, MODALITIES, LABELS))
            for utterance in utterances:
                validate_utterance(utterance, MODALITIES, len(LABELS))
        except DataError as error:
            assert expected is None, f"a valid manifest was refused: {error}"
            assert path in str(error), str(error)
            return
    assert expected is not None, f"a broken manifest was imported: {rows}"
    assert [(u.utterance_id, u.label) for u in utterances] == [(i, label) for i, label, _ in expected]
    for utterance, (_, _, features) in zip(utterances, expected):
        assert set(utterance.features) == set(features)
        for name, values in features.items():
            np.testing.assert_array_equal(utterance.features[name], values)


@FUZZ
@given(content=st.binary(max_size=120), position=st.integers(0, 3))
def test_manifest_bytes_that_are_not_utf8_csv_are_a_data_error(content, position):
    """Random bytes inside a manifest (invalid UTF-8, NUL, stray quotes) stop the import with a
    DataError naming the file, or import as CSV text: never another exception."""
    header = b"utterance_id,speaker,group,label,acoustic,visual,text\r\n"
    row = b"u1,s1,g,happy,f.npy,,\r\n"
    lines = [header, row, row.replace(b"u1", b"u2"), row.replace(b"u1", b"u3")]
    lines.insert(1 + position % 3, content)
    with tempfile.TemporaryDirectory() as directory:
        np.save(os.path.join(directory, "f.npy"), np.ones((2, 3), np.float32))
        path = os.path.join(directory, "corpus.csv")
        with open(path, "wb") as f:
            f.write(b"".join(lines))
        for read in (lambda: list(read_manifest(path, MODALITIES, LABELS)), lambda: manifest_labels(path)):
            try:
                read()
            except DataError as error:
                assert path in str(error)


def test_bad_utf8_and_an_oversized_field_name_the_line():
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "corpus.csv")
        np.save(os.path.join(directory, "f.npy"), np.ones((2, 3), np.float32))
        for bad, message in [(b"u2,s\xff,g,happy,f.npy,,\n", r"line 3: not UTF-8 text \(byte 0xff at column 5\)"),
                             (b"u2,s" + b"x" * 200_000 + b",g,happy,f.npy,,\n",
                              r"line 3: cannot be read as CSV \(field larger than field limit")]:
            with open(path, "wb") as f:
                f.write(b"utterance_id,speaker,group,label,acoustic,visual,text\nu1,s,g,happy,f.npy,,\n" + bad)
            with pytest.raises(DataError, match=f"Manifest {path} {message}"):
                list(read_manifest(path, MODALITIES, LABELS))
            with pytest.raises(DataError, match=f"Manifest {path} {message}"):
                manifest_labels(path)
