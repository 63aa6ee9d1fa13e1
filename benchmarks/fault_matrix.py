"""Fault matrix: one abuse at a time against `tuneforge serve`, each followed by a normal client's request.

    python benchmarks/fault_matrix.py [--run RUN_DIR] [--out benchmarks/results/fault_matrix.json]

For every fault the table shows whether a normal request right after (and, for
faults that hold connections, during) it was answered 200, how long that took,
how many 5xx `/metrics` counted meanwhile and how many lines the server logged.
The last fault is SIGTERM with a request in flight: it must be answered and the
process must exit 0. Traffic goes to 127.0.0.1 only; every fault is bounded.
Without --run, the same small head run as benchmarks/soak.py is trained first.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import free_port  # noqa: E402
from soak import POISON, ensure_run, metric_500s, start_server  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GOOD = {"texts": ["Shares rose sharply after the bank reported record profits."]}
SETTINGS = ["serve.max_connections=64", "serve.read_timeout_s=3", "serve.keep_alive_s=2"]


def probe(base: str) -> tuple[int | str, float]:
    started = time.perf_counter()
    try:
        status: int | str = httpx.post(f"{base}/v1/classify", json=GOOD, timeout=10).status_code
    except httpx.TransportError as exc:
        status = type(exc).__name__
    return status, round((time.perf_counter() - started) * 1000, 1)


def sockets(port: int, n: int, first: bytes = b"") -> list[socket.socket]:
    out = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if first:
            s.sendall(first)
        out.append(s)
    return out


def idle_flood(port):
    return sockets(port, 300)


def slowloris(port):
    held = sockets(port, 60, b"POST /v1/classify HTTP/1.1\r\nHost: x\r\n")

    def trickle():
        for _ in range(8):
            for s in held:
                try:
                    s.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    pass
            time.sleep(0.5)

    threading.Thread(target=trickle, daemon=True).start()
    return held


def slow_body(port):
    return sockets(port, 60, b'POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"texts": [')


def garbage(port):
    for s in sockets(port, 300, b"\x16\x03\x01 not http at all\r\n\r\n"):
        s.close()


def poison(port):
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        for _ in range(20):
            for body in POISON.values():
                assert client.post("/v1/classify", content=body, headers={"content-type": "application/json"}).status_code < 500


def oversize(port):
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        for _ in range(5):
            try:
                client.post("/v1/classify", content=b"x" * 5_000_000)
            except httpx.TransportError:
                pass  # the server may close while we still send: that is the point


def vanishing_clients(port):
    body = json.dumps(GOOD).encode()
    request = b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    for s in sockets(port, 100, request):
        s.close()  # gone before the answer


def burst(port):
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, limits=httpx.Limits(max_connections=200)) as client:
        threads = [threading.Thread(target=lambda: client.post("/v1/classify", json=GOOD)) for _ in range(400)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


FAULTS = {
    "300 idle connections": idle_flood,
    "60 slowloris headers": slowloris,
    "60 unfinished bodies": slow_body,
    "300 garbage requests": garbage,
    "140 poison requests": poison,
    "5 MB bodies": oversize,
    "100 clients gone before the answer": vanishing_clients,
    "400 concurrent requests": burst,
}


def log_lines(path: Path) -> int:
    return sum(1 for _ in open(path, encoding="utf-8", errors="replace"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/fault_matrix.json")
    args = parser.parse_args()
    run_dir = ensure_run(args.run).resolve()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    log_path = args.out.with_suffix(".server.log")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(run_dir, port, log_path, SETTINGS)
    rows = []
    try:
        probe(base)  # warm-up
        for name, fault in FAULTS.items():
            fivexx, lines = metric_500s(port), log_lines(log_path)
            held = fault(port) or []
            during = probe(base)
            for s in held:
                s.close()
            after = probe(base)
            rows.append(
                {
                    "fault": name,
                    "during": during,
                    "after": after,
                    "new_5xx": metric_500s(port) - fivexx,
                    "log_lines": log_lines(log_path) - lines,
                }
            )
            time.sleep(0.5)
        in_flight: dict = {}
        thread = threading.Thread(target=lambda: in_flight.update(result=probe(base)))
        thread.start()
        time.sleep(0.005)
        server.send_signal(signal.SIGTERM)
        thread.join(30)
        code = server.wait(60)
        rows.append({"fault": "SIGTERM with a request in flight", "during": in_flight.get("result"), "after": None, "exit_code": code})
    finally:
        if server.is_running():
            server.kill()
    print(f"{'fault':<38} {'during':>14} {'after':>14} {'new 5xx':>8} {'log lines':>10}")
    for r in rows:
        show = lambda p: f"{p[0]} {p[1]:.0f}ms" if p else "-"  # noqa: E731
        print(f"{r['fault']:<38} {show(r['during']):>14} {show(r['after']):>14} {r.get('new_5xx', 0):>8.0f} {r.get('log_lines', 0):>10}")
    print(f"server exit code after SIGTERM: {rows[-1]['exit_code']}")
    args.out.write_text(json.dumps({"run": str(run_dir), "settings": SETTINGS, "rows": rows}, indent=2) + "\n")
    failed = [r["fault"] for r in rows[:-1] if r["after"][0] != 200 or r["new_5xx"]] + ([] if rows[-1]["exit_code"] == 0 else ["SIGTERM"])
    if failed:
        print(f"failed: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
