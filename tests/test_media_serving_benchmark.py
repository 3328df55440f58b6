"""benchmarks/media_serving_latency.py with tiny models: the front end accepts the export, every
series is measured and well formed."""

import pytest

from mmin_tf import configs
from mmin_tf.data.media_manifest import FaceRegion
from mmin_tf.serving.media_inputs import MediaFrontEnd
from tests import media_fixtures
from tests.benchmark_loader import load_benchmark

media_serving_latency = load_benchmark("media_serving_latency")

TINY_MODEL = configs.ModelConfig(
    kind=configs.ModelKind.MMIN, embedding_size=8, text_cnn_channels=4, text_cnn_kernel_sizes=(2, 3),
    classifier_hidden_sizes=(8,), autoencoder_hidden_sizes=(8, 4), num_blocks=2,
)
LABELS = ("happy", "sad")


@pytest.fixture(scope="module")
def media(tmp_path_factory, face_video):
    wav = media_fixtures.write_tone(tmp_path_factory.mktemp("media") / "audio.wav", seconds=1.0)
    return media_serving_latency.Media(audio=wav, transcript=media_fixtures.TEXTS[1], video=face_video,
                                       face_region=FaceRegion(0.5, 0, 1, 1))


def test_the_extraction_record_is_accepted_by_the_front_end(bert_preset, face_model):
    modalities, record = media_serving_latency.extraction_record(bert_preset, face_model)
    assert [spec.name for spec in modalities] == ["acoustic", "visual", "text"]
    assert (modalities[0].feature_dim, modalities[2].feature_dim) == (130, media_fixtures.BERT_HIDDEN)
    assert set(record["extraction"]["models"]) == {"text", "visual"}
    front_end = MediaFrontEnd(record, bert_preset, face_model)  # the model files' hashes match
    assert front_end.extracted == ("acoustic", "visual", "text")
    assert front_end.modalities == modalities


def test_every_series_is_measured_and_the_shares_add_up(bert_preset, face_model, media, tmp_path):
    modalities, record = media_serving_latency.extraction_record(bert_preset, face_model)
    model = media_serving_latency.build_random_mmin(modalities, TINY_MODEL, len(LABELS))
    loaded, front_end = media_serving_latency.serve_media(
        model, modalities, record, LABELS, str(tmp_path / "served"), bert_preset, face_model)
    series, inputs = media_serving_latency.media_series(front_end, loaded.signatures["serving_default"], media)
    assert all(inputs[f"{name}_length"][0] > 0 for name in ("acoustic", "visual", "text"))
    timings = media_serving_latency.measure(series, requests=2, warmup=1, seed=0)
    assert [(t.signature, t.condition) for t in timings] == [
        ("end_to_end", "avt"), ("end_to_end", "at"), ("acoustic", "a"), ("text", "t"),
        ("face_detection", "v"), ("face_encoding", "v"), ("model", "avt")]
    for timing in timings:
        assert len(timing.seconds) == 2 and 0 < timing.p50_ms <= timing.p99_ms
        assert media_serving_latency.line(timing).startswith(
            f"media stage={timing.signature} request={timing.condition} batch=1 p50_ms=")
    shares = media_serving_latency.shares(timings, "avt")
    assert list(shares) == ["acoustic", "text", "face_detection", "face_encoding", "model", "other"]
    assert sum(shares.values()) == pytest.approx(1.0)


def test_a_full_request_without_a_face_is_refused(bert_preset, face_model, media):
    _, record = media_serving_latency.extraction_record(bert_preset, face_model)
    front_end = MediaFrontEnd(record, bert_preset, face_model)
    no_face = media_serving_latency.Media(media.audio, media.transcript, media.video, FaceRegion(0, 0, 0.5, 1))
    with pytest.raises(RuntimeError, match=r"misses modalities.*'visual': 'no face found in the video'"):
        media_serving_latency.media_series(front_end, None, no_face)
