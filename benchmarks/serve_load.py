"""Load test: tuneforge's service vs a naive FastAPI + pipeline-per-request service, same run.

    python benchmarks/serve_load.py [--run RUN_DIR] [--duration 60] [--concurrency 16,64]
    python benchmarks/serve_load.py --run RUN_DIR --workers 1,2 --no-baseline   # 1 vs 2 worker processes

Every server serves the same fine-tuned model on 127.0.0.1 and gets the same
bounded load: C concurrent clients, each sending one short real BBC News text
per request, for D seconds. Prints throughput, p50/p95/p99 latency and errors,
and the throughput ratios; writes JSON. `--workers 1,2` serves the run once per
worker count (`tuneforge serve --workers N`), one after the other. Without
--run, a small fine-tune of the packaged MiniLM (`--demo-method`, default full)
is trained first (about a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def short_texts(n: int = 500) -> list[str]:
    from tuneforge.data.bundled import load_bundled

    frame = load_bundled("bundled:bbc-news").sample(n, random_state=0)
    return [" ".join(t.split()[:40]) for t in frame["text"]]  # title + first sentence or two


def ensure_run(run: str | None, method: str = "full") -> Path:
    if run:
        return Path(run)
    from tuneforge.demo import demo_config
    from tuneforge.engine.run import train

    config = demo_config(method=method, output_dir="runs/benchmark", overrides=["data.max_rows=300", "train.epochs=1"])
    return train(config).run_dir


def wait_until_up(proc, port: int, *, path: str = "/healthz", what: str = "server", timeout: float = 180):
    """Poll `path` until it answers 200; kill `proc` and stop the benchmark if it never does."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"{what} did not become ready")


def start(cmd: list[str], port: int, env: dict) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    return wait_until_up(proc, port, what=" ".join(cmd))


NAIVE = "naive (pipeline per request)"


def split(counts: list[int]) -> str:
    """Answers per worker as percentages, e.g. 52/48; empty for one process."""
    total = sum(counts)
    return "/".join(f"{100 * n / total:.0f}" for n in counts) if len(counts) > 1 else ""


def tree_pss_mb(pid: int) -> float | None:
    """Memory of a process and its descendants (Linux /proc), in MB; None elsewhere.

    Proportional set size: a page shared by k processes (torch's libraries, say) counts 1/k
    in each, so the sum is what the processes hold together, not each one's RSS added up.
    """
    proc = Path("/proc")
    if not proc.exists():
        return None
    parents = {}
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, grew = {pid}, True
    while grew:
        more = {p for p, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    total_kb = 0
    for p in tree:
        try:
            rollup = (proc / str(p) / "smaps_rollup").read_text()
        except OSError:
            continue
        total_kb += next((int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")), 0)
    return round(total_kb / 1024, 1)


def tuneforge_name(workers: int, counts: list[int]) -> str:
    """The server's name: `tuneforge serve` when one worker count is measured (as before), else with its count."""
    return "tuneforge serve" if counts == [1] else f"tuneforge serve --workers {workers}"


def wait_for_workers(port: int, workers: int, timeout: float = 180) -> None:
    """Until `workers` distinct processes have answered (X-Worker), so none is still loading when timing starts."""
    if workers == 1:
        return
    seen, deadline = set(), time.time() + timeout
    while len(seen) < workers and time.time() < deadline:

        async def burst():
            async with httpx.AsyncClient() as client:
                got = await asyncio.gather(
                    *(client.get(f"http://127.0.0.1:{port}/readyz", headers={"Connection": "close"}) for _ in range(16))
                )
            return {r.headers.get("X-Worker") for r in got}

        seen |= asyncio.run(burst()) - {None}
    if len(seen) < workers:
        raise SystemExit(f"only {len(seen)} of {workers} workers answered")


class KeepAliveConnection:
    """A bare HTTP/1.1 keep-alive client for one connection.

    The load generator shares the 2 cores with the server under test, so it
    must be cheap: httpx spent about one CPU core on 65 req/s at 64 clients
    and became the bottleneck. This sends a prepared request and reads the
    status line, headers and Content-Length body; nothing else.
    """

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.served_by: Counter[str] = Counter()  # X-Worker of each answer (serve --workers N)

    async def post(self, path: str, body: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        length, close = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
            elif name == "x-worker":
                self.served_by[value.strip()] += 1
        await self.reader.readexactly(length)
        if close:
            await self.close()
        return int(status_line.split()[1])

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


async def drive(url: str, texts: list[str], concurrency: int, duration: float) -> dict:
    return await drive_bodies(url, [json.dumps({"texts": [t]}).encode() for t in texts], concurrency, duration)


async def drive_bodies(url: str, bodies: list[bytes], concurrency: int, duration: float) -> dict:
    """C clients post `bodies` in turn for D seconds; throughput, latency percentiles, errors by status."""
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    path = "/" + url.split("//", 1)[1].split("/", 1)[1]
    latencies, errors, statuses, served_by = [], 0, {}, Counter()
    stop_at = time.perf_counter() + duration

    async def worker(k: int) -> None:
        nonlocal errors
        connection, i = KeepAliveConnection(host, int(port)), k
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                status = await asyncio.wait_for(connection.post(path, bodies[i % len(bodies)]), 30)
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
                errors += 1
                await connection.close()
                served_by.update(connection.served_by)
                connection = KeepAliveConnection(host, int(port))
            i += concurrency
        await connection.close()
        served_by.update(connection.served_by)

    cpu_before = time.process_time()
    began = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    elapsed = time.perf_counter() - began
    ms = np.array(latencies) * 1000 if latencies else np.array([float("nan")])
    return {
        "requests_ok": len(latencies),
        "errors": errors,
        "statuses": statuses,
        "throughput_rps": round(len(latencies) / elapsed, 2),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "load_generator_cpu_share": round((time.process_time() - cpu_before) / elapsed, 3),  # of one core
        # answers per worker process, most first (how evenly the kernel spread the kept-alive connections)
        "answers_per_worker": sorted((n for w, n in served_by.items() if w), reverse=True),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run")
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--concurrency", default="16,64")
    parser.add_argument("--serve-set", action="append", default=[], help="extra --set for tuneforge serve, e.g. serve.threads=1")
    parser.add_argument("--workers", default="1", help="tuneforge serve --workers N for each N listed, e.g. 1,2")
    parser.add_argument("--no-baseline", action="store_true", help="skip the naive FastAPI + pipeline server")
    parser.add_argument("--demo-method", default="full", help="without --run: the demo run to train (full, head, tfidf)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/serve_load.json")
    args = parser.parse_args()
    worker_counts = [int(n) for n in args.workers.split(",")]
    run_dir = ensure_run(args.run, args.demo_method).resolve()
    texts = short_texts()
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    env.pop("TUNEFORGE_API_KEYS", None)
    servers = {}
    if not args.no_baseline:
        servers[NAIVE] = lambda port: [
            sys.executable,
            "-m",
            "uvicorn",
            "benchmarks.naive_server:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
    workers = {tuneforge_name(n, worker_counts): n for n in worker_counts}
    for n in worker_counts:
        servers[tuneforge_name(n, worker_counts)] = lambda port, n=n: [
            sys.executable,
            "-m",
            "tuneforge.cli",
            "-q",
            "serve",
            str(run_dir),
            "--port",
            str(port),
            "--workers",
            str(n),
            "--set",
            "serve.max_queue=1024",
            *(arg for setting in args.serve_set for arg in ("--set", setting)),
        ]
    results = []
    for name, command in servers.items():
        port = free_port()
        proc = start(command(port), port, {**env, "MODEL_DIR": str(run_dir / "model")})
        try:
            wait_for_workers(port, workers.get(name, 1))
            url = f"http://127.0.0.1:{port}/v1/classify"
            asyncio.run(drive(url, texts, 4, 3))  # warm-up
            for c in [int(x) for x in args.concurrency.split(",")]:
                print(f"{name}: {c} clients for {args.duration:.0f} s ...", file=sys.stderr, flush=True)
                results.append({"server": name, "concurrency": c, **asyncio.run(drive(url, texts, c, args.duration))})
                results[-1]["server_pss_mb"] = tree_pss_mb(proc.pid)  # every worker's model copy counted
        finally:
            proc.terminate()
            proc.wait(30)
    if args.serve_set:
        print(f"tuneforge serve settings: {' '.join(args.serve_set)}")
    print(
        f"{'server':<30} {'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7} {'PSS MB':>8}  answers per worker"
    )
    for r in results:
        print(
            f"{r['server']:<30} {r['concurrency']:>7} {r['throughput_rps']:>8.1f} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['errors']:>7}"
            f" {r['server_pss_mb'] or float('nan'):>8.0f}  {split(r['answers_per_worker'])}"
        )
    first = tuneforge_name(worker_counts[0], worker_counts)
    for c in sorted({r["concurrency"] for r in results}):
        pair = {r["server"]: r["throughput_rps"] for r in results if r["concurrency"] == c}
        if pair.get(NAIVE) and pair.get(first):
            print(f"throughput ratio at {c} clients: {pair[first] / pair[NAIVE]:.2f}x")
        for n in worker_counts[1:]:
            name = tuneforge_name(n, worker_counts)
            if pair.get(first) and pair.get(name):
                print(f"{name} vs {first} at {c} clients: {pair[name] / pair[first]:.2f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "run": str(run_dir),
                "serve_set": args.serve_set,
                "workers": worker_counts,
                "duration_s": args.duration,
                "cpu_count": os.cpu_count(),
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
