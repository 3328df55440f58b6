"""`python -m mmin_tf.serving` as a subprocess on this machine, started and stopped for the
serving tests and `benchmarks/serving_load.py`."""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
from typing import Optional, Sequence

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running(base_path: str, port: int, flags: Sequence[str] = (), log_path: Optional[str] = None,
            model_name: str = "mmin", timeout: float = 180.0):
    """Runs the server for `base_path` on `port` with `flags`, its output in `log_path` (a
    temporary file when None), and yields its `Popen` once `GET /v1/models/<model_name>` answers
    200; terminates it afterwards (killed when it has not ended within 30 s).

    Raises:
        RuntimeError: the server ended or was not ready within `timeout` s (with its log's tail).
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join(filter(None, [REPO_ROOT, os.environ.get("PYTHONPATH")])))
    with (open(log_path, "w+") if log_path else tempfile.TemporaryFile(mode="w+")) as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mmin_tf.serving", f"--model_name={model_name}",
             f"--model_base_path={base_path}", f"--port={port}", *flags],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    connection.request("GET", f"/v1/models/{model_name}")
                    if connection.getresponse().status == 200:
                        break
                except OSError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    log.seek(0)
                    raise RuntimeError(f"The model server did not start:\n{log.read()[-5000:]}")
                time.sleep(0.3)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
