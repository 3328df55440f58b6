"""Server-side batching: merged calls answer exactly as single ones, a bad request is refused alone,
and only requests of one version are merged."""

import asyncio
import types

import numpy as np
import pytest
import tensorflow as tf

pytest.importorskip("kserve")

from kserve.errors import InvalidInput  # noqa: E402

from mmin_tf.serving import batching  # noqa: E402
from mmin_tf.serving.predictor import VERSION_HEADER, BatchingPredictor, SavedModelPredictor  # noqa: E402
from tests.serving import versions_fixtures as fixtures  # noqa: E402


@pytest.fixture(scope="module")
def base(exported, tmp_path_factory):
    return fixtures.base_with_version(exported, tmp_path_factory.mktemp("batching"))


def test_merge_pads_each_modality_to_the_longest_request():
    first = {"acoustic": np.ones((1, 2, 3), np.float32), "acoustic_length": np.array([2], np.int32)}
    second = {"acoustic": np.full((2, 4, 3), 2, np.float32), "acoustic_length": np.array([4, 1], np.int32)}
    merged = batching.merge([first, second])
    assert [batching.rows(first), batching.rows(second)] == [1, 2] and merged["acoustic"].shape == (3, 4, 3)
    np.testing.assert_array_equal(merged["acoustic"][0, 2:], 0)
    np.testing.assert_array_equal(merged["acoustic"][1:], second["acoustic"])
    np.testing.assert_array_equal(merged["acoustic_length"], [2, 4, 1])


def _counting(version):
    """A stand-in version whose `serving_default` is the real one, counting its calls."""
    calls = []
    real = version.signatures["serving_default"]

    def serve(**inputs):
        calls.append(int(inputs["acoustic_length"].shape[0]))
        return real(**inputs)

    return types.SimpleNamespace(signatures={"serving_default": serve}), calls


def test_concurrent_requests_are_merged_and_answered_as_alone(base):
    single = SavedModelPredictor("mmin", base)
    version, calls = _counting(single.served)
    batcher = batching.Batcher(batching.BatchingOptions(max_batch_size=8, batch_timeout_ms=500))
    try:
        requests = [fixtures.payload(seed=seed, batch=1 + seed % 2) for seed in range(4)]  # 6 examples
        arrays = [single.checked_inputs(single.preprocess(request))[1] for request in requests]
        futures = [batcher.submit(version, inputs) for inputs in arrays]
        merged = [future.result(timeout=60) for future in futures]
    finally:
        batcher.stop()
    assert calls == [6]  # one model call for the four requests
    for request, outputs in zip(requests, merged):
        alone = single.predict(request)["outputs"]
        np.testing.assert_allclose(outputs["probabilities"], alone["probabilities"], rtol=1e-5, atol=1e-6)
        assert [c.decode() for c in outputs["condition"]] == alone["condition"]


def test_requests_beyond_the_batch_size_or_of_another_version_are_not_merged(base):
    single = SavedModelPredictor("mmin", base)
    first, first_calls = _counting(single.served)
    other, other_calls = _counting(single.served)
    batcher = batching.Batcher(batching.BatchingOptions(max_batch_size=3, batch_timeout_ms=300))
    try:
        inputs = single.checked_inputs(single.preprocess(fixtures.payload(batch=2)))[1]
        futures = [batcher.submit(first, inputs), batcher.submit(first, inputs), batcher.submit(other, inputs)]
        for future in futures:
            future.result(timeout=60)
    finally:
        batcher.stop()
    assert first_calls == [2, 2] and other_calls == [2]


def test_a_merged_call_that_fails_is_answered_request_by_request():
    def serve(**inputs):  # refuses any batch holding a negative value
        if np.any(inputs["x"].numpy() < 0):
            raise tf.errors.InvalidArgumentError(None, None, "x must be >= 0")
        return {"y": inputs["x"] * 2}

    version = types.SimpleNamespace(signatures={"serving_default": serve})
    batcher = batching.Batcher(batching.BatchingOptions(max_batch_size=8, batch_timeout_ms=300))
    try:
        good, bad = np.ones((1, 1, 1), np.float32), -np.ones((1, 1, 1), np.float32)
        futures = [batcher.submit(version, {"x": value}) for value in (good, bad, good)]
        assert futures[0].result(timeout=30)["y"].tolist() == [[[2.0]]]
        with pytest.raises(tf.errors.InvalidArgumentError, match="x must be >= 0"):
            futures[1].result(timeout=30)
        assert futures[2].result(timeout=30)["y"].tolist() == [[[2.0]]]
    finally:
        batcher.stop()


def test_the_batching_predictor_answers_concurrent_requests_and_refuses_bad_ones_alone(base):
    options = batching.BatchingOptions(max_batch_size=8, batch_timeout_ms=50)
    predictor = BatchingPredictor("mmin", base, batching=options)
    single = SavedModelPredictor("mmin", base)
    no_modality = fixtures.payload(seed=9, batch=1)
    for spec in ("acoustic", "visual", "text"):
        no_modality["inputs"][f"{spec}_length"] = [0]
    too_long = fixtures.payload(seed=8, batch=1)
    too_long["inputs"]["acoustic_length"] = [99]

    async def answer(request):
        headers = {}
        try:
            return await predictor.predict(request, response_headers=headers), headers
        except InvalidInput as error:
            return error, headers

    async def main():
        requests = [fixtures.payload(seed=1), no_modality, fixtures.payload(seed=2, batch=1), too_long]
        return await asyncio.gather(*(answer(request) for request in requests))

    try:
        results = asyncio.run(main())
    finally:
        predictor.stop()
    (good, headers), (refused, _), (other, _), (long_refused, _) = results
    assert headers[VERSION_HEADER] == "1"
    alone = single.predict(fixtures.payload(seed=1))["outputs"]["probabilities"]
    np.testing.assert_allclose(good["outputs"]["probabilities"], alone, rtol=1e-5, atol=1e-6)
    assert len(other["outputs"]["probabilities"]) == 1
    assert isinstance(refused, InvalidInput) and "has no modality with frames" in str(refused)
    assert isinstance(long_refused, InvalidInput) and "acoustic_length exceeds the time dimension" in str(long_refused)


def test_serialized_examples_are_answered_beside_the_batches(base):
    import base64

    from mmin_tf.data import format as format_lib
    from tests import tiny_runs

    predictor = BatchingPredictor("mmin", base)
    record = format_lib.serialize_utterance(
        format_lib.Utterance("u", "s", "g", 0, {"text": np.ones((3, 7), np.float32)}), tiny_runs.MODALITIES)
    request = {"signature_name": "serve_examples", "instances": [{"b64": base64.b64encode(record).decode()}]}
    try:
        response = asyncio.run(predictor.predict(request))
    finally:
        predictor.stop()
    assert response["predictions"][0]["condition"] == "t"


def test_batching_options_arechecked_inputs():
    with pytest.raises(ValueError, match="Batching needs max_batch_size >= 1"):
        batching.BatchingOptions(max_batch_size=0)
    with pytest.raises(ValueError, match="batch_timeout_ms >= 0"):
        batching.BatchingOptions(batch_timeout_ms=-1)
