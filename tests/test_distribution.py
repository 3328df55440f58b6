"""Training under tf.distribute: MirroredStrategy on 2 logical CPU devices and
MultiWorkerMirroredStrategy with 2 workers as local processes on 127.0.0.1.

Each distributed run is its own process (a strategy is fixed when TensorFlow initialises), under
a timeout. The tiny runs here are deterministic, so the test metrics of a distributed run are
compared with a one-device run's: every condition's test UA within 0.13 (one utterance of the
8 in fold 1's test split), and the best epoch the same.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from mmin_tf import distribution
from tests import tiny_runs

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
           PYTHONPATH=os.pathsep.join(filter(None, [REPO_ROOT, os.environ.get("PYTHONPATH")])))
# The tests that share the runs below go to one process of the suite (`-n 2 --dist loadgroup`).
shares_runs = pytest.mark.xdist_group("distribution_runs")
UA_TOLERANCE = 0.13
TIMEOUT_S = 300
# A worker whose peer died must end within this many seconds (TensorFlow's coordination service
# declares a task unhealthy after missed heartbeats; see docs/training.md).
PEER_LOSS_TIMEOUT_S = 120


def _train_command(data_dir, output_dir, *flags):
    return [sys.executable, "-m", "mmin_tf.train", f"--data_dir={data_dir}", f"--output_dir={output_dir}",
            "--model=mmin", *(f"--{name}={','.join(value) if isinstance(value, list) else value}"
                              for name, value in tiny_runs.TINY_FLAGS.items()),
            "--epochs=2", "--teacher_epochs=2", *flags]


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start_workers(data_dir, output_dir, log_dir, tag):
    """Starts the 2 workers of a multi-worker run; returns their processes and log paths."""
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes, logs = [], []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        path = os.path.join(log_dir, f"{tag}_worker{index}.log")
        with open(path, "w") as log:
            processes.append(subprocess.Popen(
                _train_command(data_dir, output_dir, "--strategy=multi_worker"), cwd=REPO_ROOT,
                env=dict(ENV, TF_CONFIG=tf_config), stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        logs.append(path)
    return processes, logs


def _wait(processes, logs, timeout=TIMEOUT_S):
    deadline = time.monotonic() + timeout
    try:
        for process in processes:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    return [process.returncode for process in processes]


def _tail(path, lines=30):
    with open(path) as f:
        return "".join(f.readlines()[-lines:])


def _metrics(output_dir):
    with open(os.path.join(output_dir, "metrics.json")) as f:
        return json.load(f)


def _assert_close(metrics, reference):
    assert metrics["best_epoch"] == reference["best_epoch"]
    for condition, values in reference["conditions"].items():
        assert abs(metrics["conditions"][condition]["ua"] - values["ua"]) <= UA_TOLERANCE, condition


@pytest.fixture(scope="module")
def one_device_run(tmp_path_factory):
    """A tiny MMIN run (teacher first) on one device; returns (data_dir, its metrics)."""
    root = tmp_path_factory.mktemp("distribution")
    data_dir = str(root / "data")
    tiny_runs.write_dataset(data_dir)
    with open(root / "one_device.log", "w") as log:
        subprocess.run(_train_command(data_dir, root / "one_device"), cwd=REPO_ROOT, env=ENV, stdout=log,
                       stderr=subprocess.STDOUT, timeout=TIMEOUT_S, check=True)
    return data_dir, _metrics(root / "one_device")


def test_make_strategy_rejects_what_it_cannot_do(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs TF_CONFIG"):
        distribution.make_strategy(distribution.StrategyKind.MULTI_WORKER)
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not a cluster"):
        distribution.make_strategy(distribution.StrategyKind.MULTI_WORKER)
    with pytest.raises(ValueError, match="mirrored only"):
        distribution.make_strategy(distribution.StrategyKind.DEFAULT, logical_cpus=2)


def test_mirrored_steps_equal_the_one_device_steps():
    """Two SGD steps with per-network clipping (active) on a 5-utterance global batch split 3 + 2:
    the weights after them equal the one-device steps' (the replicas' gradients weighted by their
    share of the rows, summed, then clipped), for the baseline, MMIN's random-condition rows and
    its grouped six-condition rows."""
    result = subprocess.run([sys.executable, "-m", "tests.distributed_steps"], cwd=REPO_ROOT, env=ENV,
                            capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(report) == {"baseline", "mmin_grouped", "mmin_random"}
    for name, values in report.items():
        assert values["max_weight_change"] > 1e-3, name  # the steps did train
        assert values["max_weight_difference"] < 1e-6, (name, values)
        assert values["loss_difference"] < 1e-5 * max(1.0, values["loss"]), (name, values)


@pytest.mark.slow  # about 2 min on 2 cores; the mirrored step itself is tested above, the loop by two workers
@shares_runs
def test_mirrored_training_matches_one_device(one_device_run, tmp_path):
    """A whole MirroredStrategy run over 2 logical CPUs ends as the one-device run."""
    data_dir, reference = one_device_run
    with open(tmp_path / "mirrored.log", "w") as log:
        returncode = subprocess.run(
            _train_command(data_dir, tmp_path / "mirrored", "--strategy=mirrored", "--logical_cpus=2"),
            cwd=REPO_ROOT, env=ENV, stdout=log, stderr=subprocess.STDOUT, timeout=TIMEOUT_S).returncode
    assert returncode == 0, _tail(tmp_path / "mirrored.log")
    _assert_close(_metrics(tmp_path / "mirrored"), reference)


@pytest.fixture(scope="module")
def two_worker_run(one_device_run, tmp_path_factory):
    """The same run by 2 workers; returns (output_dir, worker logs)."""
    data_dir, _ = one_device_run
    root = tmp_path_factory.mktemp("two_workers")
    processes, logs = _start_workers(data_dir, str(root / "run"), str(root), "uninterrupted")
    returncodes = _wait(processes, logs)
    assert returncodes == [0, 0], _tail(logs[0]) + _tail(logs[1])
    return str(root / "run"), logs


@shares_runs
def test_two_workers_match_one_device_and_only_the_chief_writes(one_device_run, two_worker_run):
    _, reference = one_device_run
    output_dir, logs = two_worker_run
    _assert_close(_metrics(output_dir), reference)
    for directory in (output_dir, os.path.join(output_dir, "teacher")):
        names = set(os.listdir(directory))
        assert {"metrics.json", "best.keras", "best.json", "config.json", "logs"} <= names
        assert "backup" not in names  # removed once the run is complete
    # The other worker's files went to a directory of its own, removed when it finished.
    with open(logs[1]) as f:
        assert "Test metrics:" in f.read()  # it returns the chief's metrics


@shares_runs
def test_a_killed_worker_ends_the_other_and_the_rerun_resumes(one_device_run, two_worker_run, tmp_path):
    data_dir, _ = one_device_run
    output_dir = str(tmp_path / "run")
    processes, logs = _start_workers(data_dir, output_dir, str(tmp_path), "killed")
    backup = os.path.join(output_dir, "backup")  # MMIN's own (after the teacher): its first epoch is done
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while not os.path.exists(os.path.join(backup, "training_metadata.json")):
            assert all(p.poll() is None for p in processes), _tail(logs[0]) + _tail(logs[1])
            assert time.monotonic() < deadline, "no MMIN epoch finished"
            time.sleep(0.05)
        os.killpg(processes[1].pid, signal.SIGKILL)
        killed_at = time.monotonic()
        returncodes = _wait(processes, logs, timeout=PEER_LOSS_TIMEOUT_S)
        ended_after = time.monotonic() - killed_at
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    assert returncodes[0] not in (0, None), _tail(logs[0])  # ended with an error, not a hang
    assert ended_after < PEER_LOSS_TIMEOUT_S
    assert "task:1" in _tail(logs[0], 200)  # the error names the lost worker
    assert not os.path.exists(os.path.join(output_dir, "metrics.json"))

    processes, logs = _start_workers(data_dir, output_dir, str(tmp_path), "rerun")
    assert _wait(processes, logs) == [0, 0], _tail(logs[0]) + _tail(logs[1])
    with open(logs[0]) as f:
        rerun = f.read()
    # The complete teacher is skipped and MMIN continues after its backed-up epoch.
    assert "Epoch 1/3" not in rerun and "Epoch 3/3" in rerun
    # Resumed exactly: the result of the uninterrupted two-worker run.
    uninterrupted, _ = two_worker_run
    assert _metrics(output_dir)["conditions"] == _metrics(uninterrupted)["conditions"]


def test_xla_under_a_strategy_without_gpus_is_a_usage_error(tmp_path):
    (tmp_path / "data").mkdir()
    result = subprocess.run(
        _train_command(tmp_path / "data", tmp_path / "run", "--strategy=mirrored", "--logical_cpus=2",
                       "--jit_compile=true"),
        cwd=REPO_ROOT, env=ENV, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode != 0
    assert "--jit_compile=true with --strategy=mirrored needs GPUs" in result.stderr
    assert not (tmp_path / "run").exists()
