r"""Load on the REST model server (`python -m mmin_tf.serving`): concurrent clients on loopback.

Without `--model_base_path`, builds an MMIN at the paper's sizes (acoustic 130, visual 342, text
1024; the default ModelConfig) with random, untrained weights and identity normalization (the
served graph of a trained export; only the weights differ) and exports it with its warm-up
requests into a temporary directory. Then:

1. in process: the loaded SavedModel's `serving_default` at batch 1, full modality, IEMOCAP-like
   lengths (150 acoustic / 50 visual / 22 text frames), `--latency_requests` calls: p50 / p99;
2. the server is started as a subprocess on 127.0.0.1 (a free port, no version polling;
   `--batching=on` starts it with `--enable_batching`) and the same request is sent
   `--latency_requests` times by one client: the server's own overhead (HTTP, JSON, checks) is
   the difference of the two p50s (`--batching=on` adds its hand-over to the batch thread);
3. `--clients` threads, each with its own keep-alive connection, send requests back to back for
   `--seconds`: columnar `serving_default` requests of one utterance, cycling through the seven
   conditions (a v t av at vt avt) with lengths drawn log-normally around 150 / 50 / 22 frames
   (sigma 0.35, as `mmin_tf.data.synthetic`). The bodies (about 1 MB of JSON for a full
   utterance) are encoded before the clock starts, so the clients spend their time waiting.
   Printed: requests answered per second, p50 / p99 / max latency, the number of errors (any
   answer but 200 with an `x-model-version` header; must be 0) and the server's resident memory
   (`VmRSS` from /proc/<pid>/status) after the warm-up and at the end, and its peak (`VmHWM`).

    python benchmarks/serving_load.py --quick                    # 4 clients x 10 s
    python benchmarks/serving_load.py                            # 4 clients x 30 s
    python benchmarks/serving_load.py --batching=on              # the server batches concurrent requests
    python benchmarks/serving_load.py --batching=both --rounds=3 # off, on, off, on, ...: a comparison

Lines printed:

    serving_load setup ...
    serving_load in_process condition=avt lengths=150/50/22 batch=1 p50_ms=... p99_ms=...
    serving_load http_one_client condition=avt lengths=150/50/22 p50_ms=... p99_ms=... overhead_p50_ms=...
    serving_load clients=4 seconds=30.0 batching=off requests=... throughput_rps=... p50_ms=... p99_ms=...
        max_ms=... errors=0 rss_start_mib=... rss_end_mib=... rss_peak_mib=...
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import sys
import tempfile
import threading
import time
from typing import Mapping, Optional, Sequence

import numpy as np
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests import model_server  # noqa: E402

_CLIENTS = flags.DEFINE_integer("clients", 4, "Concurrent clients.", lower_bound=1)
_SECONDS = flags.DEFINE_float("seconds", 30.0, "Seconds of load.", lower_bound=0.5)
_QUICK = flags.DEFINE_bool("quick", False, "10 s of load and 50 latency requests, whatever the flags say.")
_LATENCY_REQUESTS = flags.DEFINE_integer("latency_requests", 200, "Requests of the in-process and one-client series.",
                                         lower_bound=2)
_MODEL_BASE_PATH = flags.DEFINE_string(
    "model_base_path", None, "Serve this export instead of a random paper-size MMIN.")
_BATCHING = flags.DEFINE_enum(
    "batching", "off", ["off", "on", "both"], "Server batching: off, on (--enable_batching), or both, alternating "
    "off/on for --rounds rounds (a server start each), for a comparison under the same machine load.")
_ROUNDS = flags.DEFINE_integer("rounds", 2, "With --batching=both: off/on pairs.", lower_bound=1)
_MAX_BATCH_SIZE = flags.DEFINE_integer("max_batch_size", 8, "The server's --max_batch_size (with batching).")
_BATCH_TIMEOUT_MS = flags.DEFINE_float("batch_timeout_ms", 0.0, "The server's --batch_timeout_ms (with batching).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the weights, the lengths and the features.")

QUICK_SECONDS = 10.0
QUICK_LATENCY_REQUESTS = 50
IEMOCAP_LENGTHS = {"acoustic": 150, "visual": 50, "text": 22}
LENGTH_SIGMA = 0.35  # log-normal spread of utterance lengths, as in mmin_tf.data.synthetic
POOL_SIZE = 28  # pre-encoded request bodies: 4 per condition
MODEL_NAME = "mmin"


@dataclasses.dataclass(frozen=True)
class Series:
    """Latencies (seconds) of one series of requests."""

    seconds: tuple[float, ...]

    def ms(self, percentile: float) -> float:
        return 1000 * float(np.percentile(self.seconds, percentile)) if self.seconds else float("nan")

    @property
    def max_ms(self) -> float:
        return 1000 * max(self.seconds) if self.seconds else float("nan")


@dataclasses.dataclass(frozen=True)
class LoadResult:
    """What the concurrent clients saw, and the server's memory (MiB) around it."""

    clients: int
    elapsed: float
    latencies: Series
    errors: tuple[str, ...]
    versions: frozenset
    rss_start_mib: float
    rss_end_mib: float
    rss_peak_mib: float

    @property
    def throughput(self) -> float:
        return len(self.latencies.seconds) / self.elapsed

    def line(self, batching: bool) -> str:
        return (f"serving_load clients={self.clients} seconds={self.elapsed:.1f} "
                f"batching={'on' if batching else 'off'} "
                f"requests={len(self.latencies.seconds)} throughput_rps={self.throughput:.1f} "
                f"p50_ms={self.latencies.ms(50):.1f} p99_ms={self.latencies.ms(99):.1f} "
                f"max_ms={self.latencies.max_ms:.1f} errors={len(self.errors)} rss_start_mib={self.rss_start_mib:.0f} "
                f"rss_end_mib={self.rss_end_mib:.0f} rss_peak_mib={self.rss_peak_mib:.0f}")


@dataclasses.dataclass(frozen=True)
class Report:
    in_process: Series
    one_client: Series
    load: LoadResult
    batching: bool

    def lines(self) -> list[str]:
        lengths = "/".join(str(IEMOCAP_LENGTHS[name]) for name in ("acoustic", "visual", "text"))
        return [
            f"serving_load in_process condition=avt lengths={lengths} batch=1 p50_ms={self.in_process.ms(50):.2f} "
            f"p99_ms={self.in_process.ms(99):.2f}",
            f"serving_load http_one_client condition=avt lengths={lengths} p50_ms={self.one_client.ms(50):.2f} "
            f"p99_ms={self.one_client.ms(99):.2f} "
            f"overhead_p50_ms={self.one_client.ms(50) - self.in_process.ms(50):.2f}",
            self.load.line(self.batching),
        ]


def random_export(base_path: str, seed: int) -> str:
    """A paper-size MMIN with random weights (`served_model.build_random_mmin`), exported with
    warm-up requests as version 1 of `base_path`."""
    import keras

    from benchmarks import served_model
    from mmin_tf import modalities as modalities_lib
    from mmin_tf.configs import ModelConfig, ModelKind
    from mmin_tf.data import synthetic
    from mmin_tf.export import export_model

    keras.utils.set_random_seed(seed)
    modalities = modalities_lib.DEFAULT_MODALITIES
    labels = synthetic.IEMOCAP_LABEL_NAMES
    model = served_model.build_random_mmin(modalities, ModelConfig(kind=ModelKind.MMIN), len(labels))
    return export_model(model, modalities, labels, base_path)


def utterance(rng, dims: Mapping[str, int], lengths: Mapping[str, int], present: Sequence[str]) -> dict:
    return {name: rng.standard_normal((lengths[name], dims[name]), dtype=np.float32) for name in present}


def body(example: Mapping[str, np.ndarray], dims: Mapping[str, int]) -> bytes:
    """A columnar `serving_default` request of one utterance (absent modalities: length 0)."""
    inputs = {}
    for name, dim in sorted(dims.items()):
        features = example.get(name, np.zeros((1, dim), np.float32))
        inputs[name] = [features.tolist()]
        inputs[name + "_length"] = [len(features) if name in example else 0]
    return json.dumps({"signature_name": "serving_default", "inputs": inputs}).encode()


def request_pool(rng, dims: Mapping[str, int], count: int = POOL_SIZE) -> list[tuple[str, bytes]]:
    """`count` (present modalities, body) pairs cycling through every non-empty subset of the
    modalities (named like `acoustic+text`), lengths drawn around IEMOCAP's."""
    names = sorted(dims)
    subsets = [[name for index, name in enumerate(names) if mask >> index & 1] for mask in range(1, 2 ** len(names))]
    pool = []
    for position in range(count):
        present = subsets[position % len(subsets)]
        lengths = {name: max(1, int(round(IEMOCAP_LENGTHS.get(name, 20) * rng.lognormal(0.0, LENGTH_SIGMA))))
                   for name in names}
        pool.append(("+".join(present), body(utterance(rng, dims, lengths, present), dims)))
    return pool


def memory_mib(pid: int) -> dict[str, float]:
    """`VmRSS` and `VmHWM` of a process, in MiB, from /proc/<pid>/status."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values


def post(connection: http.client.HTTPConnection, payload: bytes) -> tuple[int, Optional[str], bytes]:
    connection.request("POST", f"/v1/models/{MODEL_NAME}:predict", body=payload,
                       headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, response.getheader("x-model-version"), response.read()


def one_client(port: int, payload: bytes, requests: int) -> Series:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    seconds = []
    for _ in range(requests):
        start = time.perf_counter()
        status, _, answer = post(connection, payload)
        seconds.append(time.perf_counter() - start)
        if status != 200:
            raise RuntimeError(f"The one-client series got HTTP {status}: {answer[:300]!r}")
    connection.close()
    return Series(tuple(seconds))


def load(process, port: int, pool: Sequence[tuple[str, bytes]], clients: int, seconds: float, seed: int) -> LoadResult:
    """`clients` threads posting bodies of `pool` (in a per-thread random order) for `seconds`."""
    start_memory = memory_mib(process.pid)
    latencies, errors, versions = [], [], set()
    lock = threading.Lock()
    begin = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(index: int):
        rng = np.random.default_rng([seed, index])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        mine, failed, seen = [], [], set()
        begin.wait()
        while time.perf_counter() < stop_at[0]:
            condition, payload = pool[rng.integers(len(pool))]
            start = time.perf_counter()
            try:
                status, version, answer = post(connection, payload)
            except (OSError, http.client.HTTPException) as error:
                failed.append(f"{condition}: {type(error).__name__}: {error}")
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                continue
            elapsed = time.perf_counter() - start
            if status != 200 or version is None:
                failed.append(f"{condition}: HTTP {status} version={version}: {answer[:200]!r}")
            else:
                mine.append(elapsed)
                seen.add(version)
        connection.close()
        with lock:
            latencies.extend(mine)
            errors.extend(failed)
            versions.update(seen)

    threads = [threading.Thread(target=client, args=(index,), daemon=True) for index in range(clients)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    stop_at[0] = started + seconds
    begin.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    end_memory = memory_mib(process.pid)
    return LoadResult(clients, elapsed, Series(tuple(latencies)), tuple(errors), frozenset(versions),
                      start_memory["VmRSS"], end_memory["VmRSS"], end_memory["VmHWM"])


def in_process(signature, dims: Mapping[str, int], requests: int, seed: int) -> Series:
    """Batch-1 `serving_default` calls on one full utterance at IEMOCAP_LENGTHS (after 5 untimed)."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    example = utterance(rng, dims, {name: IEMOCAP_LENGTHS.get(name, 20) for name in dims}, sorted(dims))
    inputs = {}
    for name, features in example.items():
        inputs[name] = tf.constant(features[None])
        inputs[name + "_length"] = tf.constant([len(features)], tf.int32)
    seconds = []
    for index in range(5 + requests):
        start = time.perf_counter()
        signature(**inputs)["probabilities"].numpy()
        if index >= 5:
            seconds.append(time.perf_counter() - start)
    return Series(tuple(seconds))


def measure(base_path: str, clients: int, seconds: float, latency_requests: int, seed: int,
            batching_flags: Sequence[Sequence[str]] = ((),)) -> list[Report]:
    """Everything the module docstring lists, against the newest version under `base_path`: the
    in-process series once, then one server (with each of `batching_flags` in turn) per report."""
    import tensorflow as tf

    from mmin_tf.serving import payloads, versions

    newest = max(versions.complete_versions(base_path))
    signatures = tf.saved_model.load(os.path.join(base_path, str(newest))).signatures
    dims = {spec.name: spec.feature_dim for spec in payloads.feature_inputs(signatures)}
    in_process_series = in_process(signatures["serving_default"], dims, latency_requests, seed)
    pool = request_pool(np.random.default_rng(seed), dims)
    full = body(utterance(np.random.default_rng(seed), dims, {n: IEMOCAP_LENGTHS.get(n, 20) for n in dims},
                          sorted(dims)), dims)
    reports = []
    for extra_flags in batching_flags:
        port = model_server.free_port()
        flags = ["--host=127.0.0.1", "--poll_seconds=0", *extra_flags]
        with model_server.running(base_path, port, flags, model_name=MODEL_NAME) as process:
            for _, payload in pool[:7]:  # every condition once before the clock starts
                one_client(port, payload, 1)
            one = one_client(port, full, latency_requests)
            result = load(process, port, pool, clients, seconds, seed)
        reports.append(Report(in_process_series, one, result, bool(extra_flags)))
    return reports


def main(argv):
    del argv
    seconds = QUICK_SECONDS if _QUICK.value else _SECONDS.value
    latency_requests = QUICK_LATENCY_REQUESTS if _QUICK.value else _LATENCY_REQUESTS.value
    on = ("--enable_batching", f"--max_batch_size={_MAX_BATCH_SIZE.value}",
          f"--batch_timeout_ms={_BATCH_TIMEOUT_MS.value}")
    configurations = {"off": [()], "on": [on], "both": [(), on] * _ROUNDS.value}[_BATCHING.value]
    print(f"serving_load setup clients={_CLIENTS.value} seconds={seconds} latency_requests={latency_requests} "
          f"batching={_BATCHING.value} batching_flags={' '.join(on)} cpu_count={os.cpu_count()} "
          f"load_average={os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as temp_dir:
        base_path = _MODEL_BASE_PATH.value
        if base_path is None:
            base_path = os.path.join(temp_dir, MODEL_NAME)
            random_export(base_path, _SEED.value)
        reports = measure(base_path, _CLIENTS.value, seconds, latency_requests, _SEED.value, configurations)
    print(reports[0].lines()[0])
    for report in reports:
        for line in report.lines()[1:]:
            print(line)
        for error in report.load.errors[:10]:
            print(f"serving_load error {error}")
    print(f"serving_load done versions={sorted(set().union(*(r.load.versions for r in reports)))} "
          f"load_average={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    app.run(main)
