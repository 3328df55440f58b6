"""`python -m mmin_tf.serving` as a process on 127.0.0.1: versions swapped under continuous
requests, body size limit (413), bad requests over HTTP, and the address it binds by default."""

import http.client
import json
import os
import shutil
import socket
import time

import pytest

from mmin_tf import export
from tests import model_server
from tests.serving import versions_fixtures as fixtures

pytest.importorskip("kserve")
MAX_REQUEST_BYTES = 200_000


class Server:
    def __init__(self, process, port, log_path):
        self.process, self.port, self.log_path = process, port, log_path

    def post(self, body: bytes, headers=None):
        """(status, x-model-version, decoded JSON body)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request("POST", "/v1/models/mmin:predict", body=body,
                               headers={"Content-Type": "application/json", **(headers or {})})
            response = connection.getresponse()
            return response.status, response.getheader("x-model-version"), json.loads(response.read() or b"null")
        finally:
            connection.close()

    def log(self) -> str:
        with open(self.log_path) as f:
            return f.read()


@pytest.fixture(scope="module")
def base(exported, tmp_path_factory):
    return fixtures.base_with_version(exported, tmp_path_factory.mktemp("served"))


@pytest.fixture(scope="module")
def server(base, tmp_path_factory):
    """The server on its default address (no --host), polling every 0.2 s, with TF Serving's
    thread-pool flags."""
    port = model_server.free_port()
    log_path = str(tmp_path_factory.mktemp("log") / "server.log")
    flags = ["--poll_seconds=0.2", f"--max_request_bytes={MAX_REQUEST_BYTES}",
             "--tensorflow_intra_op_parallelism=1", "--tensorflow_inter_op_parallelism=2"]
    with model_server.running(base, port, flags, log_path=log_path) as process:
        yield Server(process, port, log_path)


def _valid(server):
    status, version, answer = server.post(json.dumps(fixtures.payload()).encode())
    assert status == 200 and version is not None, answer
    return version


def test_the_thread_pool_flags_are_set_before_the_model_loads(server):
    _valid(server)
    log = server.log()
    assert "TensorFlow thread pools: intra-op 1, inter-op 2" in log
    assert log.index("TensorFlow thread pools") < log.index("loaded and warmed up")


def test_versions_swap_with_no_failed_request(server, run_dir, base):
    def send():
        status, version, answer = server.post(json.dumps(fixtures.payload(seed=1)).encode())
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {answer}")
        return version

    with fixtures.Traffic(send) as traffic:
        traffic.wait_for("1")
        export.export_run(run_dir, base)  # version 2, written while the server polls
        traffic.wait_for("2")
        fixtures.install(os.path.join(base, "1"), base, 3, fixtures.corrupt_saved_model)
        fixtures.install(os.path.join(base, "1"), base, 4, fixtures.refused_warmup)
        deadline = time.monotonic() + 60
        while not all(f"Version {v} of {base} is refused" in server.log() for v in (3, 4)):
            assert time.monotonic() < deadline, server.log()[-3000:]
            time.sleep(0.2)
        time.sleep(1.0)  # five more polls: neither is tried again
        traffic.wait_for("2")
        shutil.rmtree(os.path.join(base, "2"))
        traffic.wait_for("1")
    assert traffic.errors == []
    assert set(traffic.versions) == {"1", "2"}
    assert server.log().count(f"Version 3 of {base} is refused") == 1
    assert server.log().count(f"Version 4 of {base} is refused") == 1
    for version in ("3", "4"):  # gone: the next test starts from version 1 alone
        shutil.rmtree(os.path.join(base, version))


@pytest.mark.parametrize("body, headers, match", [
    (b"{not json", {}, "not JSON|Unrecognized request format"),
    (b"[1, 2]", {}, "must be a JSON object"),
    (b'{"instances": []}', {}, "'instances' must be a non-empty list"),
    (b'{"signature_name": "../../etc/passwd", "inputs": {}}', {}, "Unknown signature_name '../../etc/passwd'"),
    (b'{"signature_name": "serve_examples", "instances": [{"b64": "$(rm -rf /)"}]}', {}, "is not valid base64"),
    (b'{"signature_name": "serve_examples", "instances": [{"b64": "aGVsbG8="}]}', {}, "is not a serialized"),
    (b'{"inputs": {"acoustic": [[[1e39, 0, 0, 0, 0, 0]]], "acoustic_length": [1], "visual": [[[0, 0, 0, 0, 0]]], '
     b'"visual_length": [0], "text": [[[0, 0, 0, 0, 0, 0, 0]]], "text_length": [0]}}', {}, "NaN, Inf or values beyond"),
    (b'{"inputs": {"acoustic": [[[0, 0, 0, 0, 0, 0]]], "acoustic_length": [99], "visual": [[[0, 0, 0, 0, 0]]], '
     b'"visual_length": [0], "text": [[[0, 0, 0, 0, 0, 0, 0]]], "text_length": [0]}}', {},
     "exceeds the time dimension"),
    (b'{"inputs": ' + b"[" * 2000 + b"]" * 2000 + b"}", {}, ""),
    (b'{"instances": [{"transcript": "hello"}]}', {}, "records no feature extraction settings"),
    (b'{"inputs": {}}', {"Content-Type": "text/plain"}, "Inputs must be"),
], ids=["not-json", "array", "no-instances", "path-name", "shell-b64", "garbage-example", "beyond-float32",
        "length-beyond-time", "deep-nesting", "raw-media-without-settings", "other-content-type"])
def test_bad_requests_get_400_with_a_message_and_the_next_is_answered(server, body, headers, match):
    status, _, answer = server.post(body, headers)
    assert status == 400 and isinstance(answer["error"], str) and answer["error"], (status, answer)
    assert match == "" or any(part in answer["error"] for part in match.split("|")), answer
    _valid(server)


def test_an_oversized_body_gets_413_without_being_read(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:  # announces 10 GB, sends none
        sock.sendall(b"POST /v1/models/mmin:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 10000000000\r\n\r\n")
        answer = b""
        while not answer.endswith(b"}"):
            part = sock.recv(65536)
            assert part, answer
            answer += part
    assert answer.startswith(b"HTTP/1.1 413") and f"exceeds the limit of {MAX_REQUEST_BYTES} bytes".encode() in answer
    status, _, answer = server.post(b" " * (MAX_REQUEST_BYTES + 1))
    assert status == 413 and "--max_request_bytes" in answer["error"]
    _valid(server)


def test_a_chunked_oversized_body_gets_413(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    chunks = (b" " * 50_000 for _ in range(10))
    connection.request("POST", "/v1/models/mmin:predict", body=chunks, encode_chunked=True,
                       headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 413 and b"chunked" in response.read()
    connection.close()
    small = (part for part in [b'{"inputs": ', b"{}}"])
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    connection.request("POST", "/v1/models/mmin:predict", body=small, encode_chunked=True,
                       headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 400 and b"Inputs must be" in response.read()  # read whole, answered
    connection.close()


def _listening(port: int) -> list[str]:
    """Local addresses of the sockets listening on `port` (hex, as /proc/net/tcp writes them)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, _, hex_port = local.partition(":")
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    found.append(address)
    return found


def test_the_server_binds_only_the_loopback_address_by_default(server):
    assert _listening(server.port) == ["0100007F"]  # 127.0.0.1, and no IPv6 or 0.0.0.0 socket
