"""The real server process under connection abuse: idle and half-sent connections, garbage, secrets in URLs, SIGTERM."""

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tuneforge.config import load_config
from tuneforge.engine.run import train

from conftest import write_config

AUTH = {"Authorization": "Bearer k"}
GOOD = {"texts": ["The phone was great and wonderful."]}
READ_TIMEOUT_S = 4  # long enough that a loaded CI machine finishes the eviction checks before any deadline
FD_LIMIT = 64  # the server idles at about 10 descriptors: without a cap, 80 idle sockets would exhaust it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(run_dir, log_path, *settings, fd_limit=None):
    port = _free_port()
    sets = [arg for s in settings for arg in ("--set", s)]

    def limit_files():
        if fd_limit:
            resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, fd_limit))

    with open(log_path, "w") as log:  # a file, not a pipe: a full pipe would stall the server (the child keeps its copy)
        proc = subprocess.Popen(
            [sys.executable, "-m", "tuneforge.cli", "serve", f"reviews={run_dir}", "--port", str(port), *sets],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TUNEFORGE_API_KEYS": "k"},
            preexec_fn=limit_files,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return proc, port
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail("server did not become ready:\n" + log_path.read_text()[-2000:])


def _stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _closed_by_server(sock) -> bool:
    sock.settimeout(0.05)
    try:
        return sock.recv(4096) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def _read_response(sock) -> bytes:
    """One whole HTTP/1.1 response (headers and Content-Length body); what arrived if the server closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def _connect(port, first_bytes=b""):
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)  # a server that stopped accepting fails, not hangs
    if first_bytes:
        sock.sendall(first_bytes)
    return sock


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train(load_config(write_config(tmp_path_factory.mktemp("conn"), None, method="tfidf"))).run_dir


@pytest.fixture(scope="module")
def server(run_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("conn-log") / "server.log"
    proc, port = _start(
        run_dir, log, "serve.max_connections=20", f"serve.read_timeout_s={READ_TIMEOUT_S}", "serve.keep_alive_s=1", fd_limit=FD_LIMIT
    )
    yield port, log
    _stop(proc)


def test_idle_connections_cannot_starve_a_client_and_are_closed_after_the_read_timeout(server):
    port, log = server
    idle = [_connect(port) for _ in range(70)]
    trickling = [_connect(port, b"POST /v1/classify HTTP/1.1\r\nHost: x\r\n") for _ in range(10)]
    trickle_started = time.monotonic()
    held = idle + trickling
    time.sleep(0.3)
    for _ in range(3):
        started = time.perf_counter()
        r = httpx.post(f"http://127.0.0.1:{port}/v1/classify", json=GOOD, headers=AUTH, timeout=5)
        assert r.status_code == 200 and time.perf_counter() - started < 1.0
    still_open = [s for s in held if not _closed_by_server(s)]
    assert time.monotonic() - trickle_started < READ_TIMEOUT_S, "too slow to tell eviction from the read deadline"
    assert len(still_open) <= 20  # the cap: the longest-idle ones were closed to make room
    assert set(trickling) <= set(still_open)  # the newest survived; the read deadline must close them
    started = time.monotonic()
    while time.monotonic() - started < READ_TIMEOUT_S + 1.5:  # a header line every 0.25 s: slow enough to hold a naive server forever
        for sock in trickling:
            with contextlib.suppress(OSError):  # the server may have closed it already
                sock.sendall(b"X-Slow: 1\r\n")
        time.sleep(0.25)
    assert [s for s in held if not _closed_by_server(s)] == []
    for sock in held:
        sock.close()
    assert "out of system resource" not in log.read_text()  # never ran out of file descriptors


def test_kept_alive_connection_is_closed_when_idle(server):
    port, _ = server
    sock = _connect(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.settimeout(2)
    assert _read_response(sock).startswith(b"HTTP/1.1 200")
    time.sleep(1.5)  # serve.keep_alive_s=1
    assert _closed_by_server(sock)
    sock.close()


def test_when_every_connection_is_busy_a_new_request_gets_503(server):
    port, log = server
    # 20 requests whose bodies never finish: each holds a connection with the app waiting on it
    busy = []
    for _ in range(20):
        sock = _connect(port, b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 100\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 100")  # the app is reading this body: the connection is busy
        sock.sendall(b'{"te')
        busy.append(sock)
    r = httpx.post(f"http://127.0.0.1:{port}/v1/classify", json=GOOD, headers=AUTH, timeout=5)
    assert r.status_code == 503 and r.json()["error_type"] == "too_many_connections"
    assert r.headers["Retry-After"] == "1" and "serve.max_connections=20" in r.json()["error"]
    flood = [_connect(port) for _ in range(60)]  # past the hard ceiling (20 + 5 + 8) they are closed at once
    time.sleep(0.3)
    assert sum(_closed_by_server(s) for s in flood) >= 40  # all but about 13
    time.sleep(READ_TIMEOUT_S + 0.2)  # the read deadline cuts the unfinished bodies
    assert all(_closed_by_server(s) for s in busy + flood)
    assert httpx.post(f"http://127.0.0.1:{port}/v1/classify", json=GOOD, headers=AUTH, timeout=5).status_code == 200
    for sock in busy + flood:
        sock.close()
    text = log.read_text()
    assert "Traceback" not in text and "Exception in ASGI" not in text and "out of system resource" not in text


def test_a_flood_of_identical_warnings_is_counted_not_repeated(server):
    port, log = server
    for _ in range(200):
        sock = _connect(port, b"NOT HTTP AT ALL\r\n\r\n")
        sock.settimeout(2)
        assert sock.recv(4096).startswith(b"HTTP/1.1 400")
        sock.close()
    time.sleep(1.1)
    sock = _connect(port, b"NOT HTTP AT ALL\r\n\r\n")
    sock.settimeout(2)
    sock.recv(4096)
    sock.close()
    time.sleep(0.2)
    lines = [line for line in log.read_text().splitlines() if "Invalid HTTP request received" in line]
    assert 2 <= len(lines) <= 10  # one a second, not 201
    assert "more times in the last" in lines[-1]


def test_query_string_secrets_never_reach_the_access_log(server):
    port, log = server
    assert httpx.get(f"http://127.0.0.1:{port}/healthz?api_key=SECRET-IN-QUERY-1").status_code == 200
    r = httpx.post(f"http://127.0.0.1:{port}/v1/classify?api_key=SECRET-IN-QUERY-2&x=1", json=GOOD, headers=AUTH)
    assert r.status_code == 200
    time.sleep(0.2)
    text = log.read_text()
    assert "SECRET-IN-QUERY" not in text
    assert "/healthz?[query not logged]" in text and "/v1/classify?[query not logged]" in text


def test_sigterm_answers_the_request_in_flight_on_a_kept_alive_connection(run_dir, tmp_path):
    log = tmp_path / "drain.log"
    # every request waits about 1 s for its batch to fill, so one is surely in flight at SIGTERM
    proc, port = _start(run_dir, log, "serve.max_wait_ms=1000", "serve.max_batch_size=1024", "serve.drain_seconds=5")
    try:
        body = b'{"texts": ["The phone was great and wonderful."]}'
        request = (
            b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (
                len(body),
                body,
            )
        )
        busy = _connect(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        idle = _connect(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        for sock in (busy, idle):
            sock.settimeout(5)
            assert _read_response(sock).startswith(b"HTTP/1.1 200")  # both are now kept-alive connections
        busy.sendall(request)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        answer = _read_response(busy)
        assert answer.startswith(b"HTTP/1.1 200") and b'"label":"positive"' in answer, answer
        assert busy.recv(4096) == b""  # then closed, having answered
        assert idle.recv(4096) == b""  # the idle one is closed at once, not left to hang
        assert proc.wait(30) == 0
    finally:
        _stop(proc)
