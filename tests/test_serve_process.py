"""The real server process on a loopback port: HTTP in, SIGTERM out, exit code 0."""

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_process_answers_http_and_exits_cleanly_on_sigterm(tmp_path):
    run_dir = train(load_config(write_config(tmp_path, None, method="tfidf"))).run_dir
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tuneforge.cli", "serve", f"reviews={run_dir}", "--port", str(port), "--set", "serve.drain_seconds=5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**__import__("os").environ, "TUNEFORGE_API_KEYS": "k"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("server did not become ready")
        auth = {"Authorization": "Bearer k"}
        r = httpx.post(f"{base}/v1/classify", json={"texts": ["The phone was great and wonderful."]}, headers=auth)
        assert r.status_code == 200 and r.json()["results"][0]["label"] == "positive"
        assert httpx.post(f"{base}/v1/classify", json={"texts": ["x"]}).status_code == 401
        assert httpx.get(f"{base}/metrics").status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    output = proc.stdout.read()
    assert "The phone was great" not in output  # request bodies are never logged


def test_serve_refuses_unfinished_run_with_exit_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "tuneforge.cli", "serve", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "no trained model" in done.stderr
