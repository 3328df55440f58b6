"""Media records -> dataset: the Beam pipeline, the checks, failures, skipping, and training on it."""

import csv
import json
import os

import numpy as np
import pytest
import soundfile

from mmin_tf import configs
from mmin_tf.data import format as format_lib
from mmin_tf.data import pipeline as data_pipeline
from mmin_tf.data.format import DataError
from mmin_tf.data.media_manifest import FaceRegion, MediaRecord
from mmin_tf.extraction import media_dataset
from mmin_tf.features.extractor import MediaExtractor
from mmin_tf.features.settings import ExtractionSettings, ModelFile, NoFace
from mmin_tf.training import run_training
from tests import media_fixtures, tiny_runs

IN_PROCESS = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
ALL = ("acoustic", "visual", "text")
TEXTS = ("Excuse me.", "No, I do not know why.", "It was very good!", "So sad.")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, face_video):
    """12 records: 3 sessions x 2 speakers x 2 utterances, 2 labels, a wav each, the face video."""
    directory = tmp_path_factory.mktemp("corpus")
    records = []
    for index in range(12):
        group = f"Ses0{index // 4 + 1}"
        speaker = group + "FM"[index // 2 % 2]
        label = ("happy", "sad")[index % 2]
        wav = media_fixtures.write_tone(directory / f"u{index:02d}.wav", seconds=0.8 + 0.1 * index,
                                        frequency=200.0 + 150 * (index % 2))
        records.append(MediaRecord(
            f"{speaker}_{index:02d}", speaker, group, label, audio=wav, transcript=TEXTS[index % 4],
            video=face_video, video_start=0.1 * (index % 3), face_region=FaceRegion(0.5, 0, 1, 1),
            source=f"test row {index}"))
    return records


def _extract(records, out_dir, bert_preset, face_model, **kwargs):
    kwargs.setdefault("beam_options", IN_PROCESS)
    return media_dataset.extract_dataset(
        records, str(out_dir), modalities=kwargs.pop("modalities", ALL), bert_preset=bert_preset,
        face_model=face_model, utterances_per_shard=kwargs.pop("utterances_per_shard", 5), **kwargs)


def _examples(data_dir):
    info = format_lib.load_info(str(data_dir))
    return info, list(data_pipeline.read_split(str(data_dir), info).as_numpy_iterator())


@pytest.fixture(scope="module")
def two_workers(corpus, bert_preset, face_model, tmp_path_factory):
    """The corpus extracted by the DirectRunner with 2 worker processes."""
    out_dir = tmp_path_factory.mktemp("two_workers") / "data"
    summary = _extract(corpus, out_dir, bert_preset, face_model,
                       beam_options=["--direct_running_mode=multi_processing", "--direct_num_workers=2"])
    return str(out_dir), summary


def test_two_worker_processes_write_a_complete_dataset(two_workers, corpus, bert_preset, face_model):
    data_dir, summary = two_workers
    assert summary == {"utterances": 12, "skipped": 0, "no_face": 0, "shards": 3}
    info, examples = _examples(data_dir)
    assert [(spec.name, spec.feature_dim) for spec in info.modalities] == [
        ("acoustic", 130), ("visual", 48), ("text", media_fixtures.BERT_HIDDEN)]
    assert info.label_names == ("happy", "sad")
    assert info.shards == tuple(f"records-{i:05d}-of-00003.tfrecord" for i in range(3))
    assert sorted(os.listdir(data_dir)) == sorted(["dataset.json", "folds.json", *info.shards])
    # Records in manifest order, each the extractor's own features of its media.
    assert [e["utterance_id"].decode() for e in examples] == [r.utterance_id for r in corpus]
    direct = MediaExtractor(ExtractionSettings(), ALL, bert_preset, face_model).extract(corpus[:3])
    for example, extracted in zip(examples, direct):
        for name, expected in extracted.features.items():
            np.testing.assert_allclose(example[name][:example[f"{name}_length"]], expected, atol=1e-5)
    assert [e["visual_length"] for e in examples[:3]] == [5, 4, 3]  # video spans from 0, 0.1, 0.2 s
    assert [e["acoustic_length"] for e in examples[:3]] == [8, 9, 10]  # 0.8, 0.9, 1.0 s at 100 ms


def test_the_extraction_settings_and_models_are_recorded(two_workers, bert_preset, face_model):
    data_dir, _ = two_workers
    info = format_lib.load_info(data_dir)
    recorded = ExtractionSettings.from_json(info.extraction)
    assert recorded.models == {"text": ModelFile.of(os.path.join(bert_preset, "model.weights.h5")),
                               "visual": ModelFile.of(face_model)}
    assert recorded.acoustic.downsample == 10 and recorded.no_face is NoFace.ABSENT
    assert (info.extraction["no_face_count"], info.extraction["skipped_count"]) == (0, 0)


def test_one_worker_in_memory_gives_the_same_dataset(two_workers, corpus, bert_preset, face_model, tmp_path):
    _extract(corpus, tmp_path / "data", bert_preset, face_model)
    _, expected = _examples(two_workers[0])
    _, received = _examples(tmp_path / "data")
    assert len(expected) == len(received)
    for a, b in zip(expected, received):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_training_runs_on_the_extracted_dataset(two_workers, tmp_path):
    data_dir, _ = two_workers
    metrics = run_training(tiny_runs.tiny_config(data_dir, tmp_path / "mmin", kind=configs.ModelKind.MMIN,
                                                 data=configs.DataConfig(data_dir=data_dir, fold="1", batch_size=4)))
    assert set(metrics["conditions"]) == {"a", "v", "t", "av", "at", "vt", "avt"}
    assert all(np.isfinite(values["ua"]) for values in metrics["conditions"].values())


def _bad_media(corpus, tmp_path):
    """The corpus with one bad input per kind, by utterance index."""
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF....WAVEfmt garbage")
    empty = tmp_path / "empty.wav"
    soundfile.write(str(empty), np.zeros(0, np.float32), 16000)
    nan = tmp_path / "nan.wav"
    soundfile.write(str(nan), np.full(16000, np.nan, np.float32), 16000, subtype="FLOAT")
    not_video = tmp_path / "not_video.avi"
    not_video.write_bytes(b"no video here")
    replace = lambda record, **changes: MediaRecord(**{**record.__dict__, **changes})
    # Even rows are broken: every speaker keeps an utterance (the odd rows), so folds still exist.
    bad = {0: dict(audio=str(corrupt)), 2: dict(audio=str(empty)), 4: dict(video=str(not_video)),
           6: dict(end=5.0), 8: dict(audio=str(nan))}
    problems = {0: "corrupt.wav: cannot be read as audio", 2: "empty.wav: no samples",
                4: "not_video.avi: cannot be opened as a video", 6: "lies outside the media's",
                8: "nan.wav: NaN or Inf samples"}
    records = [replace(record, **bad[index]) if index in bad else record for index, record in enumerate(corpus)]
    return records, {corpus[index].utterance_id: problem for index, problem in problems.items()}


def test_bad_media_fail_the_run_naming_every_utterance_and_file(corpus, bert_preset, face_model, tmp_path):
    records, expected = _bad_media(corpus, tmp_path)
    with pytest.raises(DataError, match="5 of 12 utterances could not be extracted") as raised:
        _extract(records, tmp_path / "data", bert_preset, face_model)
    for utterance_id, problem in expected.items():
        line = next(line for line in str(raised.value).splitlines() if f"'{utterance_id}'" in line)
        assert problem in line
    assert sorted(os.listdir(tmp_path)) == ["corrupt.wav", "empty.wav", "nan.wav", "not_video.avi"]


def test_non_finite_features_fail_naming_the_utterance(corpus, bert_preset, face_model, tmp_path):
    import keras

    model = keras.saving.load_model(face_model)
    kernel = model.stem.kernel
    kernel.assign(np.full(kernel.shape, np.nan, np.float32))
    poisoned = str(tmp_path / "nan_face.keras")
    model.save(poisoned)
    with pytest.raises(DataError, match=r"12 of 12 utterances could not be extracted.*\n  utterance 'Ses01F_00' "
                                        r"\(test row 0\): video .*face.avi: the face model gave NaN or Inf features"):
        _extract(corpus, tmp_path / "data", bert_preset, poisoned, modalities=("visual",))
    assert not os.path.exists(tmp_path / "data")


def test_skip_bad_media_lists_every_skipped_utterance(corpus, bert_preset, face_model, tmp_path):
    records, expected = _bad_media(corpus, tmp_path)
    missing = MediaRecord(**{**corpus[10].__dict__, "audio": str(tmp_path / "gone.wav")})
    records[10] = missing
    summary = _extract(records, tmp_path / "data", bert_preset, face_model, skip_bad_media=True)
    assert summary["utterances"] == 6 and summary["skipped"] == 6
    with open(tmp_path / "data" / media_dataset.SKIPPED_FILENAME, newline="") as f:
        skipped = {row["utterance_id"]: row for row in csv.DictReader(f)}
    assert set(skipped) == set(expected) | {missing.utterance_id}
    assert "gone.wav not found" in skipped[missing.utterance_id]["error"]
    for utterance_id, problem in expected.items():
        assert problem in skipped[utterance_id]["error"] and skipped[utterance_id]["source"].startswith("test row")
    info, examples = _examples(tmp_path / "data")
    assert info.num_utterances == 6 and info.extraction["skipped_count"] == 6
    assert [e["utterance_id"].decode() for e in examples] == [r.utterance_id for r in corpus[1::2]]


def test_missing_media_files_fail_before_extraction(corpus, bert_preset, face_model, tmp_path):
    records = [MediaRecord(**{**corpus[0].__dict__, "video": str(tmp_path / "gone.avi")}),
               MediaRecord(**{**corpus[1].__dict__, "audio": None, "video": None}), *corpus[2:]]
    with pytest.raises(DataError, match=r"2 of 12 utterances lack media \(nothing was written.*\n.*gone.avi not found"
                                        r"\n.*'Ses01F_01'.*no audio / video: no modality to extract"):
        _extract(records, tmp_path / "data", bert_preset, face_model, modalities=("acoustic", "visual"))
    assert os.listdir(tmp_path) == []


def test_what_the_media_lack_is_absent_in_the_dataset(corpus, bert_preset, face_model, tmp_path):
    records = [MediaRecord(**{**corpus[0].__dict__, "transcript": None}),
               MediaRecord(**{**corpus[1].__dict__, "face_region": FaceRegion(0, 0, 0.5, 1)}), *corpus[2:]]
    summary = _extract(records, tmp_path / "data", bert_preset, face_model)
    assert summary["no_face"] == 1 and summary["utterances"] == 12
    info, examples = _examples(tmp_path / "data")
    assert info.presence == {"acoustic": 12, "visual": 11, "text": 11}
    assert examples[0]["text_length"] == 0 and examples[1]["visual_length"] == 0
    assert info.extraction["no_face"] == "absent" and info.extraction["no_face_utterances"] == [corpus[1].utterance_id]


def test_no_face_is_counted_and_follows_the_policy(corpus, bert_preset, face_model, tmp_path):
    faceless = [MediaRecord(**{**record.__dict__, "face_region": FaceRegion(0, 0, 0.5, 1)}) if index < 2 else record
                for index, record in enumerate(corpus)]
    summary = _extract(faceless, tmp_path / "zeros", bert_preset, face_model, modalities=("visual",),
                       settings=ExtractionSettings(no_face=NoFace.ZEROS))
    assert summary["no_face"] == 2
    info, examples = _examples(tmp_path / "zeros")
    assert info.extraction["no_face_count"] == 2
    assert info.extraction["no_face_utterances"] == [corpus[0].utterance_id, corpus[1].utterance_id]
    assert examples[0]["visual_length"] == 1 and not examples[0]["visual"].any()
    with pytest.raises(DataError, match=r"2 of 12 utterances could not be extracted.*\n.*no face found in video"):
        _extract(faceless, tmp_path / "error", bert_preset, face_model, modalities=("visual",),
                 settings=ExtractionSettings(no_face=NoFace.ERROR))


def test_labels_ids_and_modalities_are_checked(corpus, bert_preset, face_model, tmp_path):
    with pytest.raises(DataError, match=r"unknown label 'sad'; the label names are \['happy', 'anger'\]"):
        _extract(corpus, tmp_path / "a", bert_preset, face_model, label_names=["happy", "anger"])
    with pytest.raises(DataError, match=r"Duplicate utterance id"):
        _extract([corpus[0], corpus[0]], tmp_path / "b", bert_preset, face_model)
    with pytest.raises(ValueError, match="needs a BERT preset directory"):
        _extract(corpus, tmp_path / "c", None, face_model)
    with pytest.raises(ValueError, match=r"among \['acoustic', 'visual', 'text'\]"):
        _extract(corpus, tmp_path / "d", bert_preset, face_model, modalities=("smell",))
    assert os.listdir(tmp_path) == []


def test_explicit_label_order_and_a_subset_of_modalities(corpus, bert_preset, face_model, tmp_path):
    _extract(corpus, tmp_path / "data", bert_preset, face_model, label_names=["sad", "happy", "neutral"],
             modalities=("text", "acoustic"))
    info, examples = _examples(tmp_path / "data")
    assert info.label_names == ("sad", "happy", "neutral")
    assert [spec.name for spec in info.modalities] == ["acoustic", "text"]
    assert examples[0]["label"] == 1 and "visual" not in info.extraction["models"]
    with open(tmp_path / "data" / "dataset.json") as f:
        assert json.load(f)["extraction"]["text"] == {"alignment": "pieces"}
