"""Jobs killed with SIGKILL at random moments, and a full disk: afterwards there is no output or a
complete one, never one a reader takes as complete while it is not, and the same command run
again completes (training resumes).

`prepare`, `export` and `train` are killed a few times each: shortly (a seeded random delay) after
they begin writing, so the kills land before, during and after the writes. `extract` (a Beam
pipeline with two worker processes; acoustic features only, the cheapest) is killed once, its main
process only, as the OOM killer or `kill -9 <pid>` would; its worker processes must not outlive
the test.
"""

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import keras
import pytest

from mmin_tf.data import format as format_lib
from mmin_tf.data import pipeline
from mmin_tf.serving import versions
from tests import tiny_runs

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
           PYTHONPATH=os.pathsep.join(filter(None, [REPO_ROOT, os.environ.get("PYTHONPATH")])))
TINY_MODALITIES = ",".join(f"{s.name}:{s.code}:{s.feature_dim}:{s.encoder.value}" for s in tiny_runs.MODALITIES)


def _command(module, *flags):
    return [sys.executable, "-m", module, *flags]


def _group_members(pgid):
    """Live (not zombie) processes of process group `pgid`."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


def _kill_group(pgid, timeout=30.0):
    """SIGKILLs what is left of process group `pgid` and waits until none of it runs."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while _group_members(pgid):
        assert time.monotonic() < deadline, f"processes {_group_members(pgid)} survived SIGKILL"
        time.sleep(0.05)


def _run_and_kill(command, started, delay, log, timeout=300.0, group=True):
    """Runs `command` in its own process group; once `started()` holds (or it has ended), waits
    `delay` s and SIGKILLs it (its whole group, or with `group=False` its main process only).
    Returns True when it had finished successfully before the kill."""
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=ENV, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while process.poll() is None and not started():
            assert time.monotonic() < deadline, f"{command} did not start within {timeout} s"
            time.sleep(0.02)
        end = time.monotonic() + delay
        while process.poll() is None and time.monotonic() < end:
            time.sleep(0.02)
        finished = process.poll() == 0
        if group:
            _kill_group(process.pid)
        elif process.poll() is None:
            process.kill()
        process.wait(timeout=60)
        return finished
    finally:
        if group:
            _kill_group(process.pid)


def _run(command, log, timeout=600):
    result = subprocess.run(command, cwd=REPO_ROOT, env=ENV, stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
    return result.returncode


def _hidden(directory, prefix):
    return lambda: os.path.isdir(directory) and any(name.startswith(prefix) for name in os.listdir(directory))


def _check_dataset(path, num_utterances):
    """A dataset directory under its final name is complete: every record of every shard."""
    info = format_lib.load_info(path)
    assert info.num_utterances == num_utterances
    assert sum(1 for _ in pipeline.read_split(path, info)) == num_utterances
    assert set(format_lib.load_folds(path)) == set(info.fold_names)


def test_killed_prepare_leaves_no_dataset_or_a_complete_one(tmp_path):
    out = tmp_path / "data"
    command = _command("mmin_tf.prepare", "--source=synthetic", f"--out={out}", "--num_utterances=1500",
                       f"--modalities={TINY_MODALITIES}", "--mean_lengths=acoustic:20,visual:8,text:6",
                       "--utterances_per_shard=100")
    rng = random.Random(0)  # writing takes ~0.3 s here, after ~5 s of start-up
    with open(tmp_path / "log.txt", "w") as log:
        for delay in [rng.uniform(0.0, 0.4) for _ in range(2)]:
            _run_and_kill(command, _hidden(tmp_path, ".data.incomplete-"), delay, log)
            if out.exists():  # the kill came after the rename: complete; removed for the next try
                _check_dataset(str(out), 1500)
                shutil.rmtree(out)
            assert sorted(name for name in os.listdir(tmp_path) if not name.startswith(".")) == ["log.txt"]
        assert _run(command, log) == 0
    _check_dataset(str(out), 1500)


def _check_versions(base):
    """Every integer directory under `base` is a complete version."""
    integer = sorted(int(name) for name in os.listdir(base) if name.isdigit())
    assert integer == sorted(versions.complete_versions(base))
    for version in integer:
        path = os.path.join(base, str(version))
        for name in ("saved_model.pb", "variables/variables.index", "assets.extra/labels.json",
                     "assets.extra/tf_serving_warmup_requests"):
            assert os.path.isfile(os.path.join(path, name)), (version, name)
    return integer


def test_killed_export_leaves_only_complete_versions(run_dir, tmp_path):
    base = tmp_path / "mmin"
    command = _command("mmin_tf.export", f"--run_dir={run_dir}", f"--export_dir={base}")
    rng = random.Random(1)
    with open(tmp_path / "log.txt", "w") as log:
        for _ in range(2):
            _run_and_kill(command, _hidden(base, "."), rng.uniform(0.0, 2.5), log)
            if base.exists():
                _check_versions(str(base))
        assert _run(command, log) == 0
    newest = os.path.join(base, str(max(_check_versions(str(base)))))
    import tensorflow as tf

    assert versions.warm_up(newest, tf.saved_model.load(newest).signatures) == 14  # every record replays


def _train_command(data_dir, output_dir):
    flags = [f"--data_dir={data_dir}", f"--output_dir={output_dir}", "--model=baseline", "--fold=1"]
    for name, value in tiny_runs.TINY_FLAGS.items():
        flags.append(f"--{name}={','.join(value) if isinstance(value, list) else value}")
    return _command("mmin_tf.train", *flags)


def _check_run(output_dir):
    with open(os.path.join(output_dir, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["model"] == "baseline" and len(metrics["conditions"]) == 7
    assert os.path.isfile(os.path.join(output_dir, "best.keras"))
    return metrics


def test_killed_training_resumes_and_metrics_mark_only_a_complete_run(tmp_path):
    data_dir, output_dir = tmp_path / "data", tmp_path / "run"
    tiny_runs.write_dataset(data_dir)
    command = _train_command(data_dir, output_dir)
    with open(tmp_path / "log.txt", "w") as log:
        moments = [(lambda: (output_dir / "config.json").exists(), 1.0),  # in the first epoch
                   (lambda: (output_dir / "backup").exists(), 0.3)]  # right after the first backup
        for started, delay in moments:
            finished = _run_and_kill(command, started, delay, log)
            if (output_dir / "metrics.json").exists():
                assert finished  # metrics.json only when the run is complete
                _check_run(output_dir)
        assert _run(command, log) == 0
    _check_run(output_dir)
    assert not (output_dir / "backup").exists()


def test_a_killed_beam_extraction_leaves_nothing_and_no_worker_survives(tmp_path, face_video):
    from tests.test_extract import _manifest

    manifest = _manifest(str(tmp_path), face_video)
    out = tmp_path / "data"
    command = _command("mmin_tf.extract", f"--media_manifest={manifest}", f"--out={out}",
                       "--extract_modalities=acoustic", "--utterances_per_shard=2", "--direct_num_workers=2",
                       "--direct_running_mode=multi_processing")
    with open(tmp_path / "log.txt", "w") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=ENV, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            deadline = time.monotonic() + 300
            while len(_group_members(process.pid)) < 3:  # the main process and its two Beam workers
                assert process.poll() is None and time.monotonic() < deadline, "no Beam workers started"
                time.sleep(0.05)
            time.sleep(1.0)
            workers = [pid for pid in _group_members(process.pid) if pid != process.pid]
            process.kill()  # the main process only
            process.wait(timeout=60)
            deadline = time.monotonic() + 5
            while [pid for pid in workers if pid in _group_members(process.pid)] and time.monotonic() < deadline:
                time.sleep(0.1)
            orphans = [pid for pid in workers if pid in _group_members(process.pid)]
        finally:
            _kill_group(process.pid)
        assert not out.exists()
        assert _group_members(process.pid) == []
        assert _run(command, log) == 0
    _check_dataset(str(out), 8)
    if orphans:  # everything above held; this is the known gap
        pytest.xfail(f"Beam's SDK worker processes {orphans} were still running 5 s after the main process was "
                     "killed (reparented to init and idle; over 90 s when watched by hand); the test killed them")


class _KilledAfterEpoch(keras.callbacks.Callback):
    """Stops training as a SIGKILL would, after the backup of epoch `epoch` (1-based) is written
    (the backup callback runs before this one)."""

    def __init__(self, epoch):
        super().__init__()
        self.kill_epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.kill_epoch:
            raise KeyboardInterrupt("killed")


def _three_epoch_config(data_dir, output_dir):
    from mmin_tf import configs

    stage = configs.OptimizationConfig(epochs=2, decay_epochs=1, learning_rate=1e-3, beta_1=0.9, clip_norm=1.0)
    return tiny_runs.tiny_config(data_dir, output_dir, optimization=stage)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """A dataset and the metrics of its three-epoch run, never interrupted."""
    from mmin_tf.training import run_training

    root = tmp_path_factory.mktemp("uninterrupted")
    tiny_runs.write_dataset(root / "data")
    return root / "data", run_training(_three_epoch_config(root / "data", root / "run"))


@pytest.mark.parametrize("torn", ["latest.weights.h5", "training_metadata.json"])
@pytest.mark.parametrize("killed_after", [1, 2])
def test_a_run_killed_while_a_backup_was_written_resumes_exactly(uninterrupted, tmp_path, torn, killed_after):
    """Killed while writing its first backup, a run starts over; killed while writing a later one, it
    resumes from the backup before (Keras falls back for a torn weights file only): either way it
    ends as the uninterrupted run."""
    from mmin_tf.training import run_training

    data_dir, expected = uninterrupted
    config = _three_epoch_config(data_dir, tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        run_training(config, [_KilledAfterEpoch(killed_after)])
    backup = tmp_path / "run" / "backup"
    assert (backup / (torn + ".bkp")).exists() is (killed_after > 1)
    with open(backup / torn, "r+b") as f:
        f.truncate(7)  # as if killed while it was written: its first bytes only
    metrics = run_training(config)
    _check_run(tmp_path / "run")
    assert metrics["best_epoch"] == expected["best_epoch"]
    assert metrics["conditions"] == expected["conditions"]


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_while_a_dataset_is_written_leaves_nothing(tmp_path, monkeypatch):
    from mmin_tf.data import writer as writer_lib

    class FullDisk:
        def __init__(self, path):
            self.count = 0

        def write(self, record):
            self.count += 1
            if self.count == 3:
                _no_space()

        def close(self):
            pass

    monkeypatch.setattr(writer_lib.tf.io, "TFRecordWriter", FullDisk)
    with pytest.raises(OSError, match="No space left on device"):
        tiny_runs.write_dataset(tmp_path / "data")
    assert os.listdir(tmp_path) == []


def test_a_full_disk_during_an_export_leaves_no_version(run_dir, tmp_path, monkeypatch):
    from mmin_tf import export

    monkeypatch.setattr(export.saved_model.json, "dump", _no_space)
    with pytest.raises(OSError, match="No space left on device"):
        export.export_run(run_dir, str(tmp_path / "mmin"))
    assert os.listdir(tmp_path / "mmin") == []


def test_a_full_disk_while_run_files_are_written_keeps_the_old_file(tmp_path, monkeypatch):
    from mmin_tf import atomic_files

    path = tmp_path / "metrics.json"
    atomic_files.write_json(str(path), {"old": True})

    class FullFile:
        def __init__(self, name, mode="r", **kwargs):
            self.file = open(name, mode, **kwargs)

        def write(self, text):
            self.file.write(text[:10])
            _no_space()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

    monkeypatch.setattr(atomic_files, "open", FullFile, raising=False)
    with pytest.raises(OSError, match="No space left on device"):
        atomic_files.write_json(str(path), {"new": True})
    assert json.loads(path.read_text()) == {"old": True}
    assert os.listdir(tmp_path) == ["metrics.json"]
