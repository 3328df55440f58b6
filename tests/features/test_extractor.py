"""The media extractor: the three modalities of records, failures per record, the no-face policy."""

import dataclasses

import numpy as np
import pytest

from mmin_tf.data.media_manifest import FaceRegion, MediaRecord
from mmin_tf.features import settings as settings_lib
from mmin_tf.features.extractor import MediaExtractor
from mmin_tf.features.settings import ExtractionSettings, ModelFile, NoFace
from tests import media_fixtures

ALL = ("acoustic", "visual", "text")


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    return media_fixtures.write_tone(tmp_path_factory.mktemp("audio") / "a.wav", seconds=1.0)


@pytest.fixture(scope="module")
def extractor(bert_preset, face_model):
    return MediaExtractor(ExtractionSettings(), ALL, bert_preset, face_model)


def _record(utterance_id="u1", **media):
    return MediaRecord(utterance_id, "s1", "g1", "happy", source="test", **media)


def test_every_modality_of_a_record(extractor, wav, face_video):
    [result] = extractor.extract([_record(audio=wav, transcript="Excuse me.", video=face_video, end=0.8)])
    assert result.error is None and not result.no_face
    assert {name: array.shape for name, array in result.features.items()} == {
        "acoustic": (8, 130), "visual": (5, 48), "text": (3, media_fixtures.BERT_HIDDEN)}
    assert extractor.feature_dims == {"acoustic": 130, "visual": 48, "text": media_fixtures.BERT_HIDDEN}
    utterance = result.utterance({"happy": 2})
    assert (utterance.utterance_id, utterance.label, utterance.source) == ("u1", 2, "test")


def test_a_failing_record_does_not_stop_the_others(extractor, wav, face_video, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"junk")
    results = extractor.extract([
        _record("good", audio=wav, transcript="yes", video=face_video),
        _record("bad_audio", audio=str(broken), transcript="yes", video=face_video),
        _record("no_text", audio=wav, transcript=" . ", video=face_video),
        _record("good_too", audio=wav, transcript="no", video=face_video),
    ])
    assert [result.error is None for result in results] == [True, False, True, True]
    assert "utterance 'bad_audio' (test): audio" in results[1].error and "broken.wav" in results[1].error
    assert results[1].features is None
    np.testing.assert_allclose(results[0].features["acoustic"], results[3].features["acoustic"])


def test_a_transcript_without_pieces_fails_only_its_record(extractor, wav, face_video):
    results = extractor.extract([
        _record("ok", audio=wav, transcript="yes", video=face_video),
        _record("empty", audio=wav, transcript="\u200b", video=face_video),
    ])
    assert results[0].error is None
    assert "utterance 'empty' (test): transcript: the transcript" in results[1].error


@pytest.mark.parametrize("no_face, expected", [
    (NoFace.ZEROS, "zeros"), (NoFace.ERROR, "error"), (NoFace.ABSENT, "absent")])
def test_no_face_policies(bert_preset, face_model, wav, face_video, no_face, expected):
    extractor = MediaExtractor(dataclasses.replace(ExtractionSettings(), no_face=no_face), ALL, bert_preset, face_model)
    [result] = extractor.extract(
        [_record(audio=wav, transcript="yes", video=face_video, face_region=FaceRegion(0, 0, 0.5, 1))])
    assert result.no_face
    if expected == "zeros":
        np.testing.assert_array_equal(result.features["visual"], np.zeros((1, 48), np.float32))
    elif expected == "error":
        assert "no face found in video" in result.error and result.features is None
    else:
        assert "visual" not in result.features and "acoustic" in result.features


def test_what_a_record_lacks_is_absent_and_a_record_with_nothing_fails(bert_preset, face_model, wav, face_video):
    extractor = MediaExtractor(ExtractionSettings(), ("acoustic", "text"), bert_preset)
    [result] = extractor.extract([_record(transcript="yes")])
    assert result.error is None and list(result.features) == ["text"]
    [only_audio] = MediaExtractor(ExtractionSettings(), ("acoustic",)).extract([_record(audio=wav)])
    assert list(only_audio.features) == ["acoustic"]
    faces = MediaExtractor(ExtractionSettings(), ("visual",), face_model=face_model)
    [nothing] = faces.extract([_record(video=face_video, face_region=FaceRegion(0, 0, 0.5, 1))])
    assert nothing.no_face and nothing.features is None
    assert "no modality: none of ['visual'] could be extracted (no face found: True)" in nothing.error


def test_construction_errors(bert_preset):
    with pytest.raises(ValueError, match="`modalities` are some of"):
        MediaExtractor(ExtractionSettings(), ("acoustic", "smell"))
    with pytest.raises(ValueError, match="needs a BERT preset directory"):
        MediaExtractor(ExtractionSettings(), ("text",))
    with pytest.raises(ValueError, match="needs a face model"):
        MediaExtractor(ExtractionSettings(), ("visual",), bert_preset)


def test_settings_record_everything_and_check_models(tmp_path, face_model):
    model = ModelFile.of(face_model)
    assert ExtractionSettings().no_face is NoFace.ABSENT
    settings = dataclasses.replace(ExtractionSettings(no_face=NoFace.ERROR), models={"visual": model})
    assert ExtractionSettings.from_json(settings.to_json()) == settings
    assert settings.to_json()["models"]["visual"]["name"] == "face.keras"
    assert settings_lib.check_model_file(settings, "visual", face_model) == model
    other = tmp_path / "other.keras"
    other.write_bytes(b"another model")
    with pytest.raises(ValueError, match="is not the one the features were extracted with"):
        settings_lib.check_model_file(settings, "visual", str(other))
    with pytest.raises(TypeError, match="must be a NoFace"):
        ExtractionSettings(no_face="zeros")
