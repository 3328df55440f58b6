"""Version watching in process: new versions are loaded and warmed up before they serve, broken
ones are refused once, removed ones stop serving, and requests in flight finish on their version."""

import os
import shutil

import numpy as np
import pytest

pytest.importorskip("kserve")

from kserve.errors import InvalidInput, ModelNotReady  # noqa: E402

from mmin_tf import export  # noqa: E402
from mmin_tf.serving import predictor as predictor_lib  # noqa: E402
from mmin_tf.serving import versions  # noqa: E402
from mmin_tf.serving.predictor import VERSION_HEADER, SavedModelPredictor  # noqa: E402
from tests.serving import versions_fixtures as fixtures  # noqa: E402


@pytest.fixture
def base(exported, tmp_path):
    """A model base path holding a copy of the exported tiny model as version 1."""
    return fixtures.base_with_version(exported, tmp_path)


def _send(predictor, request):
    headers = {}
    response = predictor.predict(request, response_headers=headers)
    assert len(response["outputs"]["probabilities"]) == 2
    return headers[VERSION_HEADER]


def _load_counter(monkeypatch):
    calls = []
    real = versions.load_version

    def counting(version, path, media_options):
        calls.append(version)
        return real(version, path, media_options)

    monkeypatch.setattr(versions, "load_version", counting)
    return calls


def test_new_broken_and_removed_versions_under_continuous_requests(run_dir, base, monkeypatch):
    predictor = SavedModelPredictor("mmin", base)
    loads = _load_counter(monkeypatch)
    request = fixtures.payload()
    with fixtures.Traffic(lambda: _send(predictor, request)) as traffic:
        traffic.wait_for("1")
        assert export.export_run(run_dir, base) == os.path.join(base, "2")
        assert predictor.poll().version == 2
        traffic.wait_for("2")
        fixtures.install(os.path.join(base, "1"), base, 3, fixtures.corrupt_saved_model)
        fixtures.install(os.path.join(base, "1"), base, 4, fixtures.refused_warmup)
        for _ in range(3):  # refused once, not again on every poll
            assert predictor.poll().version == 2
        assert loads == [2, 4, 3]
        refusals = predictor.watcher.refusals()
        assert "cannot be loaded" in refusals[3]
        assert "tf_serving_warmup_requests record 1 failed" in refusals[4] and "has no modality" in refusals[4]
        traffic.wait_for("2")
        shutil.rmtree(os.path.join(base, "2"))
        assert predictor.poll().version == 1
        traffic.wait_for("1")
    assert traffic.errors == []
    changes = [v for i, v in enumerate(traffic.versions) if i == 0 or v != traffic.versions[i - 1]]
    assert changes == ["1", "2", "1"]


def test_a_refused_version_is_tried_again_when_its_files_change(exported, base, monkeypatch):
    predictor = SavedModelPredictor("mmin", base)
    loads = _load_counter(monkeypatch)
    broken = fixtures.install(exported, base, 2, fixtures.corrupt_saved_model)
    assert predictor.poll().version == 1 and predictor.poll().version == 1
    assert loads == [2]
    shutil.copyfile(os.path.join(exported, "saved_model.pb"), os.path.join(broken, "saved_model.pb"))
    assert predictor.poll().version == 2
    assert loads == [2, 2]


def test_a_version_takes_traffic_only_after_its_warm_up(exported, base, monkeypatch):
    predictor = SavedModelPredictor("mmin", base)
    seen = []
    real = versions.warm_up

    def watching(path, signatures):
        seen.append((os.path.basename(path), predictor.served.version))
        return real(path, signatures)

    monkeypatch.setattr(versions, "warm_up", watching)
    fixtures.install(exported, base, 2)
    assert predictor.poll().version == 2
    assert seen == [("2", 1)]  # warmed up while version 1 was serving


def test_a_request_in_flight_finishes_on_its_version_after_a_swap_and_a_removal(exported, base):
    predictor = SavedModelPredictor("mmin", base)
    pinned = predictor.preprocess(fixtures.payload())  # as KServe does when a request arrives
    fixtures.install(exported, base, 2)
    assert predictor.poll().version == 2
    shutil.rmtree(os.path.join(base, "1"))
    headers = {}
    first = predictor.predict(pinned, response_headers=headers)
    assert headers[VERSION_HEADER] == "1"
    headers = {}
    second = predictor.predict(fixtures.payload(), response_headers=headers)
    assert headers[VERSION_HEADER] == "2"
    np.testing.assert_allclose(first["outputs"]["probabilities"], second["outputs"]["probabilities"], rtol=1e-6)


def test_directories_that_are_not_complete_versions_are_ignored(exported, base, monkeypatch):
    predictor = SavedModelPredictor("mmin", base)
    loads = _load_counter(monkeypatch)
    shutil.copytree(exported, os.path.join(base, ".5.incomplete-abc"))  # an export being written
    os.makedirs(os.path.join(base, "6", "variables"))  # a copy without saved_model.pb (yet)
    shutil.copytree(exported, os.path.join(base, "seven"))
    assert predictor.poll().version == 1 and loads == []
    assert versions.complete_versions(base) == {1: os.path.join(base, "1")}


def test_start_serves_the_newest_version_that_loads_and_refuses_without_one(exported, base, tmp_path):
    fixtures.install(exported, base, 2, fixtures.refused_warmup)
    assert SavedModelPredictor("mmin", base).served.version == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"No servable SavedModel version .* under"):
        SavedModelPredictor("mmin", str(empty))
    only_broken = str(tmp_path / "broken")
    os.makedirs(only_broken)
    fixtures.install(exported, only_broken, 1, fixtures.corrupt_saved_model)
    with pytest.raises(FileNotFoundError, match=r"version 1: cannot be loaded"):
        SavedModelPredictor("mmin", only_broken)


def test_with_every_version_removed_the_model_is_not_ready_until_one_returns(exported, base):
    predictor = SavedModelPredictor("mmin", base)
    shutil.rmtree(os.path.join(base, "1"))
    assert predictor.poll() is None and not predictor.ready
    with pytest.raises(ModelNotReady, match="No servable version"):
        predictor.predict(fixtures.payload())
    fixtures.install(exported, base, 3)
    assert predictor.poll().version == 3 and predictor.ready


def test_the_watch_thread_picks_up_a_new_version(exported, base):
    predictor = SavedModelPredictor("mmin", base)
    predictor.watch(0.05)
    try:
        with fixtures.Traffic(lambda: _send(predictor, fixtures.payload())) as traffic:
            fixtures.install(exported, base, 2)
            traffic.wait_for("2", timeout=60)
        assert traffic.errors == []
    finally:
        predictor.stop()
    assert not predictor.ready


class _FrontEnd:
    """Stands in for `MediaFrontEnd` (whose models are tested in test_media_serving.py)."""

    made = []

    def __init__(self, recorded, bert_preset=None, face_model=None, limits=None):
        self.recorded = recorded
        _FrontEnd.made.append(recorded["tag"])

    def inputs(self, requests):
        from tests import tiny_runs

        inputs = {}
        for spec in tiny_runs.MODALITIES:
            inputs[spec.name] = np.ones((len(requests), 2, spec.feature_dim), np.float32)
            inputs[spec.length_key] = np.full([len(requests)], 2 if spec.name == "text" else 0, np.int32)
        return inputs, [{"acoustic": "absent from the request", "visual": "absent from the request"}] * len(requests)


def test_each_version_has_its_own_raw_media_front_end(exported, base, monkeypatch):
    import json

    monkeypatch.setattr(predictor_lib.media_inputs, "MediaFrontEnd", _FrontEnd)
    _FrontEnd.made = []
    predictor = SavedModelPredictor("mmin", base)
    media = {"instances": [{"transcript": "Excuse me."}]}
    with pytest.raises(InvalidInput, match="Raw media cannot be served by version 1: it records no feature extraction"):
        predictor.preprocess(media)

    def with_extraction(path):
        with open(os.path.join(path, "assets.extra", "extraction.json"), "w") as f:
            json.dump({"tag": "v2 settings"}, f)

    fixtures.install(exported, base, 2, with_extraction)
    assert predictor.poll().version == 2 and _FrontEnd.made == ["v2 settings"]
    headers = {}
    [prediction] = predictor.predict(predictor.preprocess(media), response_headers=headers)["predictions"]
    assert headers[VERSION_HEADER] == "2"
    assert prediction["condition"] == "t" and prediction["missing_modalities"]["visual"] == "absent from the request"


def test_a_front_end_that_cannot_be_built_refuses_the_version(exported, base, monkeypatch):
    def refusing(recorded, **kwargs):
        raise ValueError("the face model is not the one the features were extracted with")

    monkeypatch.setattr(predictor_lib.media_inputs, "MediaFrontEnd", refusing)
    predictor = SavedModelPredictor("mmin", base)
    fixtures.install(exported, base, 2, lambda path: open(
        os.path.join(path, "assets.extra", "extraction.json"), "w").write("{}"))
    assert predictor.poll().version == 1
    assert "raw-media front end cannot be built: the face model is not the one" in predictor.watcher.refusals()[2]


def _warmup_file(path, logs):
    import tensorflow as tf

    from mmin_tf.export import saved_model

    with tf.io.TFRecordWriter(os.path.join(path, saved_model.WARMUP_FILE)) as writer:
        for log in logs:
            writer.write(log.SerializeToString())


def _predict_log(signature_name):
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="mmin", signature_name=signature_name))
    return prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))


def test_warm_up_refusals_name_the_record(tmp_path):
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    os.makedirs(tmp_path / "assets.extra")
    nan = {"serving_default": lambda: {"probabilities": tf.constant([np.nan])}}
    cases = [
        ([_predict_log("serving_default")] * 1001, nan, r"has more than 1000 records \(TF Serving's limit\)"),
        ([prediction_log_pb2.PredictionLog(classify_log=prediction_log_pb2.ClassifyLog())], nan,
         r"record 1 is a classify_log; only predict_log records are served"),
        ([_predict_log("nope")], nan, r"record 1 asks for signature 'nope', which the model lacks"),
        ([_predict_log("")], nan, r"record 1: output 'probabilities' holds NaN or Inf"),
    ]
    for logs, signatures, match in cases:
        _warmup_file(str(tmp_path), logs)
        with pytest.raises(versions.VersionLoadError, match=match):
            versions.warm_up(str(tmp_path), signatures)
    with open(tmp_path / "assets.extra" / "tf_serving_warmup_requests", "wb") as f:
        f.write(b"not a TFRecord file at all")
    with pytest.raises(versions.VersionLoadError, match=r"record 0 failed: DataLossError: corrupted record"):
        versions.warm_up(str(tmp_path), nan)
    os.remove(tmp_path / "assets.extra" / "tf_serving_warmup_requests")
    assert versions.warm_up(str(tmp_path), nan) == 0  # no warm-up file: nothing to replay
