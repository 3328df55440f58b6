"""benchmarks/serving_load.py for ~2 s with 2 clients against the tiny model, so that it cannot rot."""

import re

import pytest

from tests.benchmark_loader import load_benchmark
from tests.serving import versions_fixtures as fixtures

pytest.importorskip("kserve")
serving_load = load_benchmark("serving_load")


def test_the_load_benchmark_runs_and_reports_every_number(exported, tmp_path):
    base = fixtures.base_with_version(exported, tmp_path)
    batching = ("--enable_batching", "--max_batch_size=4", "--batch_timeout_ms=1")
    [report] = serving_load.measure(base, clients=2, seconds=2.0, latency_requests=3, seed=0, batching_flags=[batching])
    load = report.load
    assert load.errors == () and load.versions == {"1"}
    assert len(load.latencies.seconds) > 2 and load.throughput > 0
    assert 0 < load.latencies.ms(50) <= load.latencies.ms(99) <= load.latencies.max_ms
    assert load.rss_start_mib > 50 and load.rss_peak_mib >= load.rss_end_mib > 50
    assert len(report.in_process.seconds) == len(report.one_client.seconds) == 3
    in_process, one_client, clients = report.lines()
    assert re.fullmatch(r"serving_load in_process condition=avt lengths=150/50/22 batch=1 p50_ms=\S+ p99_ms=\S+",
                        in_process)
    assert "overhead_p50_ms=" in one_client
    assert re.fullmatch(r"serving_load clients=2 seconds=\S+ batching=on requests=\d+ throughput_rps=\S+ p50_ms=\S+ "
                        r"p99_ms=\S+ max_ms=\S+ errors=0 rss_start_mib=\d+ rss_end_mib=\d+ rss_peak_mib=\d+", clients)


def test_the_request_pool_covers_every_condition():
    dims = {"acoustic": 6, "visual": 5, "text": 7}
    import numpy as np

    pool = serving_load.request_pool(np.random.default_rng(0), dims, count=7)
    assert sorted(name for name, _ in pool) == sorted(
        ["acoustic", "text", "visual", "acoustic+text", "acoustic+visual", "text+visual", "acoustic+text+visual"])
