"""`serve --workers 2`: two processes on one port, metrics merged, a dead worker replaced, SIGTERM drains all."""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tuneforge.config import load_config
from tuneforge.engine.run import train

from conftest import run_cli, write_config

AUTH = {"Authorization": "Bearer k"}
GOOD = {"texts": ["The phone was great and wonderful."]}
CLASSIFY_OK = re.compile(r'^tuneforge_requests_total\{error_type="",route="/v1/classify",status="200"\} (\S+)$', re.M)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return int(next(line for line in status if line.startswith("PPid:")).split()[1])


def _post(base: str) -> httpx.Response | None:
    try:
        return httpx.post(f"{base}/v1/classify", json=GOOD, headers=AUTH, timeout=30)
    except httpx.TransportError:  # not listening yet
        return None


def _wait_exited(pid: int, timeout: float = 10) -> None:
    """Until `pid` is gone (reaped by its parent): only then are all its threads, and so its sockets, closed.

    A zombie thread-group leader is not enough: the other threads may still hold the listening socket.
    """
    deadline = time.time() + timeout
    while os.path.exists(f"/proc/{pid}") and time.time() < deadline:
        time.sleep(0.02)
    assert not os.path.exists(f"/proc/{pid}"), f"process {pid} did not exit"


def _classify(base: str, n: int) -> list[httpx.Response | None]:
    """`n` requests at once, each on a new connection (the kernel hands each connection to one worker)."""
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: _post(base), range(n)))


def _ok(answers) -> list[httpx.Response]:
    return [r for r in answers if r is not None and r.status_code == 200]


def _served_count(base: str) -> float:
    return float(CLASSIFY_OK.search(httpx.get(f"{base}/metrics").text).group(1))


def _gauge(base: str, name: str) -> float:
    return float(re.search(rf'^{name}\{{model="reviews"\}} (\S+)$', httpx.get(f"{base}/metrics").text, re.M).group(1))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads worker parents from /proc")
def test_two_workers_share_the_port_merge_metrics_survive_a_crash_and_drain_on_sigterm(tmp_path):
    run_dir = train(load_config(write_config(tmp_path, None, method="tfidf"))).run_dir
    temp = tmp_path / "tmp"  # the service's private metrics directory goes here, and must be gone at the end
    temp.mkdir()
    port, log_path = _free_port(), tmp_path / "serve.log"
    command = [sys.executable, "-m", "tuneforge.cli", "serve", f"reviews={run_dir}", "--port", str(port), "--workers", "2"]
    settings = ["--set", "serve.drain_seconds=5", "--set", "serve.max_wait_ms=1000", "--set", "serve.max_batch_size=1024"]
    with open(log_path, "w") as log:  # a file, not a pipe: a full pipe would stall the server
        proc = subprocess.Popen(
            command + settings, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "TUNEFORGE_API_KEYS": "k", "TMPDIR": str(temp)}
        )
    base, sent, workers = f"http://127.0.0.1:{port}", 0, set()
    try:
        deadline = time.time() + 120
        while len(workers) < 2 and time.time() < deadline:  # until both workers have loaded their model and answered
            answers = _ok(_classify(base, 8))
            sent += len(answers)
            workers |= {r.headers["X-Worker"] for r in answers}
            time.sleep(0 if answers else 0.3)
        assert len(workers) == 2, log_path.read_text()[-3000:]
        assert len(list(temp.glob("tuneforge-metrics-*"))) == 1

        answers = _ok(_classify(base, 20))
        sent += len(answers)
        assert len(answers) == 20
        assert {r.json()["results"][0]["label"] for r in answers} == {"positive"}
        pids = {int(r.headers["X-Worker"]) for r in answers} | {int(w) for w in workers}
        assert len(pids) == 2 and {_parent_of(pid) for pid in pids} == {proc.pid}  # one process each, both ours
        assert httpx.post(f"{base}/v1/classify", json=GOOD).status_code == 401  # every worker checks keys
        assert _served_count(base) == sent  # whichever worker answers /metrics counts every worker's requests

        victim = pids.pop()
        os.kill(victim, signal.SIGKILL)
        _wait_exited(victim)  # connections queued at a dying worker are lost (documented); new ones go to the live one
        deadline, replaced = time.time() + 120, set()
        while not replaced and time.time() < deadline:  # the parent starts a new worker in its place
            raw = _classify(base, 8)
            answers = _ok(raw)
            sent += len(answers)
            assert len(answers) == 8, [r.status_code if r is not None else None for r in raw]  # the survivor serves meanwhile
            replaced = {int(r.headers["X-Worker"]) for r in answers} - pids - {victim}
        assert replaced, log_path.read_text()[-3000:]
        assert f"Worker process [{victim}] died (exit code -9)" in log_path.read_text()
        assert _served_count(base) == sent  # the dead worker's requests still count

        # SIGTERM while requests wait for their batch (serve.max_wait_ms): each is answered, then every process exits 0
        with ThreadPoolExecutor(8) as pool:
            in_flight = [pool.submit(_post, base) for _ in range(8)]
            deadline = time.time() + 0.9
            while time.time() < deadline and _gauge(base, "tuneforge_queue_depth") < 8:  # summed over the workers
                time.sleep(0.02)
            assert _gauge(base, "tuneforge_queue_depth") == 8
            proc.send_signal(signal.SIGTERM)
            answers = _ok(f.result() for f in in_flight)
        assert len(answers) == 8 and {r.json()["results"][0]["label"] for r in answers} == {"positive"}
        assert proc.wait(60) == 0, log_path.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for pid in pids | replaced:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert list(temp.glob("tuneforge-metrics-*")) == []
    assert "The phone was great" not in log_path.read_text()  # request bodies are never logged


def test_workers_must_be_at_least_one(monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(monkeypatch, capsys, "serve", str(tmp_path), "--workers", "0")
    assert code == 2 and "--workers" in err


def test_shared_socket_gives_connections_without_nagle_delay():
    """Accepted connections must say TCP, or asyncio leaves Nagle on and each kept-alive answer waits 40 ms for an ACK."""
    import asyncio

    from tuneforge.serve.workers import bind

    async def nodelay_of_accepted_connection() -> int:
        sock, seen = bind("127.0.0.1", 0), asyncio.Future()

        async def handle(reader, writer):
            seen.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(handle, sock=sock)
        async with server:
            reader, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            value = await asyncio.wait_for(seen, 5)
            writer.close()
        return value

    assert asyncio.run(nodelay_of_accepted_connection()) != 0


def test_port_in_use_is_a_config_error_naming_the_port():
    from tuneforge.errors import ConfigError
    from tuneforge.serve.workers import bind

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"serve.port: cannot listen on 127.0.0.1 port {port}"):
            bind("127.0.0.1", port)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT spreads connections on Linux only")
def test_reuse_port_sockets_spread_a_burst_of_connections_over_the_workers():
    """One shared socket let the first worker to wake accept all 16 connections of a burst; one socket per worker does not."""
    from tuneforge.serve.workers import REUSE_PORT, bind

    assert REUSE_PORT
    holder = bind("127.0.0.1", 0, reuse_port=True)  # the parent's: holds the port, never listens
    port = holder.getsockname()[1]
    listeners = [bind("127.0.0.1", port, reuse_port=True) for _ in range(2)]
    for s in listeners:
        s.listen(64)
        s.setblocking(False)
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(32)]
    accepted = []
    for s in listeners:
        n = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                s.accept()[0].close()
                n += 1
        accepted.append(n)
    for s in [*clients, *listeners, holder]:
        s.close()
    assert sum(accepted) == 32 and min(accepted) >= 4, accepted
