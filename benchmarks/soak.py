"""Soak test: a real encoder served for minutes at a steady load with 1% poison requests mixed in.

    python benchmarks/soak.py [--run RUN_DIR] [--duration 300] [--rate 20] [--clients 8] [--poison 0.01]

Without --run, a `head` run of the packaged MiniLM on 300 rows of bundled BBC News
is trained first (about a minute). The server runs as `tuneforge serve` on
127.0.0.1; clients send one real BBC text per request at `--rate` requests per
second in total, and every 1/poison-th request is a poison one (lone surrogate,
whitespace only, 50,000-deep JSON, bad UTF-8, bad JSON, wrong type, text over
serve.max_chars), which must get a 4xx and must not disturb anyone else.

Reports: 5xx and other failures of good requests, 5xx of poison requests,
p50/p99 latency of good requests, the server's RSS after warm-up and at the end
(growth %), RSS samples over time, 500s counted in /metrics and the server's log
size. Writes JSON (default benchmarks/results/soak.json). Exit code 1 when a good
request got a 5xx or a poison request got anything but a 4xx.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import KeepAliveConnection, free_port, short_texts, wait_until_up  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
POISON = {
    "lone_surrogate": b'{"texts": ["\\ud800"]}',
    "whitespace_only": b'{"texts": ["   \\n\\t  "]}',
    "deep_json": b'{"texts": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    "bad_utf8": b'{"texts": ["caf\xe9"]}',
    "bad_json": b'{"texts": ["unterminated',
    "wrong_type": b'{"texts": [1, {"a": null}]}',
    "over_max_chars": json.dumps({"texts": ["x" * 20_001]}).encode(),
}


def ensure_run(run: str | None) -> Path:
    if run:
        return Path(run)
    from tuneforge.demo import demo_config
    from tuneforge.engine.run import train

    print("training a head run of minilm-l6 on 300 BBC News rows ...", file=sys.stderr, flush=True)
    config = demo_config(method="head", output_dir=str(ROOT / "runs/soak"), overrides=["data.max_rows=300"])
    return train(config).run_dir


def start_server(run_dir: Path, port: int, log_path: Path, extra: list[str]) -> psutil.Popen:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    env.pop("TUNEFORGE_API_KEYS", None)  # loopback: no keys needed
    sets = [arg for s in extra for arg in ("--set", s)]
    log = open(log_path, "w")
    proc = psutil.Popen(
        [sys.executable, "-m", "tuneforge.cli", "serve", str(run_dir), "--port", str(port), *sets],
        stdout=log,
        stderr=log,
        env=env,
        cwd=ROOT,
    )
    log.close()
    return wait_until_up(proc, port, path="/readyz", what=f"server (see {log_path})")


async def drive(port: int, texts: list[str], *, duration: float, rate: float, clients: int, poison: float, on_sample) -> dict:
    bodies = [json.dumps({"texts": [t]}).encode() for t in texts]
    kinds = list(POISON)
    every = max(1, round(1 / poison)) if poison > 0 else 0
    good_latency: list[float] = []
    good_status: dict[str, int] = {}
    poison_status: dict[str, dict[str, int]] = {k: {} for k in kinds}
    counter = {"n": 0}
    interval = clients / rate
    began = time.perf_counter()
    stop_at = began + duration

    def tally(table: dict, key: str) -> None:
        table[key] = table.get(key, 0) + 1

    async def client(k: int) -> None:
        connection = KeepAliveConnection("127.0.0.1", port)
        due = began + k * interval / clients
        while True:
            due += interval
            now = time.perf_counter()
            if now >= stop_at:
                break
            if due > now:
                await asyncio.sleep(due - now)
            counter["n"] += 1
            n = counter["n"]
            kind = kinds[(n // every) % len(kinds)] if every and n % every == 0 else None
            body = POISON[kind] if kind else bodies[n % len(bodies)]
            started = time.perf_counter()
            try:
                status = str(await asyncio.wait_for(connection.post("/v1/classify", body), 30))
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                status = f"transport:{type(exc).__name__}"
                await connection.close()
                connection = KeepAliveConnection("127.0.0.1", port)
            if kind:
                tally(poison_status[kind], status)
            else:
                tally(good_status, status)
                if status == "200":
                    good_latency.append(time.perf_counter() - started)
        await connection.close()

    async def sampler() -> None:
        while True:
            on_sample(time.perf_counter() - began)
            remaining = stop_at - time.perf_counter()
            if remaining <= 0:
                return
            await asyncio.sleep(min(5, remaining))

    await asyncio.gather(sampler(), *(client(k) for k in range(clients)))
    elapsed = time.perf_counter() - began
    ms = np.array(good_latency) * 1000 if good_latency else np.array([float("nan")])
    sent_good = sum(good_status.values())
    return {
        "seconds": round(elapsed, 1),
        "requests": counter["n"],
        "achieved_rps": round(counter["n"] / elapsed, 2),
        "good_requests": sent_good,
        "good_ok": good_status.get("200", 0),
        "good_5xx": sum(v for s, v in good_status.items() if s.startswith("5")),
        "good_not_200": sent_good - good_status.get("200", 0),
        "good_statuses": good_status,
        "poison_requests": sum(sum(v.values()) for v in poison_status.values()),
        "poison_not_4xx": sum(v for table in poison_status.values() for s, v in table.items() if not s.startswith("4")),
        "poison_statuses": poison_status,
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
    }


def metric_500s(port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("tuneforge_requests_total{") and 'status="5' in line
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="Run directory to serve (default: train a small head run first).")
    parser.add_argument("--duration", type=float, default=300, help="Seconds of load after warm-up.")
    parser.add_argument("--rate", type=float, default=20, help="Requests per second, all clients together.")
    parser.add_argument("--clients", type=int, default=8, help="Concurrent keep-alive connections.")
    parser.add_argument("--poison", type=float, default=0.01, help="Share of poison requests.")
    parser.add_argument("--serve-set", action="append", default=[], help="extra --set for tuneforge serve")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/soak.json")
    args = parser.parse_args()

    run_dir = ensure_run(args.run).resolve()
    texts = short_texts()
    port = free_port()
    log_path = args.out.with_suffix(".server.log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    server = start_server(run_dir, port, log_path, args.serve_set)
    samples: list[tuple[float, float]] = []
    try:
        asyncio.run(drive(port, texts, duration=5, rate=args.rate, clients=args.clients, poison=0, on_sample=lambda t: None))  # warm-up
        rss_start = server.memory_info().rss
        print(
            f"soak: {args.rate} req/s from {args.clients} clients for {args.duration:.0f} s, {args.poison:.0%} poison ...",
            file=sys.stderr,
            flush=True,
        )
        result = asyncio.run(
            drive(
                port,
                texts,
                duration=args.duration,
                rate=args.rate,
                clients=args.clients,
                poison=args.poison,
                on_sample=lambda t: samples.append((round(t, 1), round(server.memory_info().rss / 2**20, 1))),
            )
        )
        rss_end = server.memory_info().rss
        counted_5xx = metric_500s(port)
        still_ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
    finally:
        server.terminate()
        server.wait(60)
    report = {
        "run": str(run_dir),
        "duration_s": args.duration,
        "rate_rps": args.rate,
        "clients": args.clients,
        "poison_share": args.poison,
        "serve_set": args.serve_set,
        "cpu_count": os.cpu_count(),
        **result,
        "rss_start_mb": round(rss_start / 2**20, 1),
        "rss_end_mb": round(rss_end / 2**20, 1),
        "rss_growth_pct": round(100 * (rss_end - rss_start) / rss_start, 2),
        "rss_samples_mb": samples,
        "metrics_5xx_counted": counted_5xx,
        "ready_at_end": still_ready,
        "server_exit_code": server.returncode,
        "server_log_lines": sum(1 for _ in open(log_path, encoding="utf-8", errors="replace")),
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"good: {result['good_ok']}/{result['good_requests']} ok, {result['good_5xx']} 5xx; "
        f"poison: {result['poison_requests']} sent, {result['poison_not_4xx']} not 4xx; "
        f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms; "
        f"RSS {report['rss_start_mb']} -> {report['rss_end_mb']} MB ({report['rss_growth_pct']:+.1f}%); "
        f"/metrics 5xx {counted_5xx:.0f}; server log {report['server_log_lines']} lines; written {args.out}"
    )
    if result["good_5xx"] or result["poison_not_4xx"] or not still_ready:
        sys.exit(1)


if __name__ == "__main__":
    main()
