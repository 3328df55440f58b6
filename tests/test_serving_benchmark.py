"""benchmarks/serving_latency.py on a tiny MMIN: every measurement present and well formed."""

import numpy as np
import pytest

from mmin_tf import configs
from mmin_tf import modalities as modalities_lib
from tests import tiny_runs
from tests.benchmark_loader import load_benchmark

serving_latency = load_benchmark("serving_latency")

MODALITIES = tiny_runs.MODALITIES
TINY_MODEL = configs.ModelConfig(
    kind=configs.ModelKind.MMIN, embedding_size=8, text_cnn_channels=4, text_cnn_kernel_sizes=(2, 3),
    classifier_hidden_sizes=(8,), autoencoder_hidden_sizes=(8, 4), num_blocks=2,
)
LABELS = ("happy", "anger", "sadness", "neutral")


@pytest.fixture(scope="module")
def timings(tmp_path_factory):
    model = serving_latency.build_random_mmin(MODALITIES, TINY_MODEL, len(LABELS))
    loaded = serving_latency.export_and_load(model, MODALITIES, LABELS, str(tmp_path_factory.mktemp("served")))
    return serving_latency.measure(
        loaded.signatures, MODALITIES, {"acoustic": 6, "visual": 4, "text": 3},
        requests=5, batches=2, batch_size=7, warmup=1, seed=0,
    )


def test_every_condition_and_signature_is_measured(timings):
    conditions = [c.name for c in modalities_lib.evaluation_conditions(MODALITIES)]
    assert [(t.signature, t.condition, t.batch) for t in timings] == (
        [("serving_default", name, 1) for name in conditions]
        + [("serve_examples", "avt", 1), ("serving_default", "avt", 7), ("serving_default", "mixed_missing", 7)]
    )
    assert [len(t.seconds) for t in timings] == [5] * 8 + [2, 2]


def test_percentiles_are_ordered_and_throughput_positive(timings):
    for timing in timings:
        assert 0 < timing.p50_ms <= timing.p99_ms
        assert min(timing.seconds) * 1000 <= timing.mean_ms <= max(timing.seconds) * 1000
        assert timing.utterances_per_second > 0
        assert timing.line().startswith(f"serving signature={timing.signature} condition={timing.condition} ")
    assert "p99_ms=" in timings[0].line()
    assert "utterances_per_second=" in timings[-1].line()


def test_ratios_cover_every_missing_condition_and_the_parsing_cost(timings):
    result = serving_latency.ratios(timings, MODALITIES)
    assert set(result) == {f"p50_{name}_over_avt" for name in ("a", "v", "t", "av", "at", "vt")} | {
        "p50_serve_examples_over_serving_default", "throughput_mixed_missing_over_avt",
    }
    assert all(value > 0 for value in result.values())


def test_lengths_spread_around_the_means_or_sit_on_them():
    means = {"acoustic": 40, "visual": 12, "text": 9}
    fixed = serving_latency.draw_utterances(np.random.default_rng(0), MODALITIES, means, 20, length_sigma=0.0)
    assert {name: {u[name].shape[0] for u in fixed} for name in means} == {name: {n} for name, n in means.items()}
    spread = serving_latency.draw_utterances(np.random.default_rng(0), MODALITIES, means, 20)
    assert len({u["acoustic"].shape[0] for u in spread}) > 5
    assert [u["text"].shape[1] for u in spread] == [spec.feature_dim for spec in MODALITIES if spec.name == "text"] * 20
