"""Latency of `POST /v1/recommend` and `POST /v1/similar` under concurrent clients, on a real MovieLens run.

    python benchmarks/recommend_serve.py [--run RUN_DIR] [--concurrency 32] [--duration 30]

Without --run, the example config is trained first (`recommend.method=auto`, about
20 s). Request mix for /v1/recommend: 80 % known users, 10 % anonymous sessions of
5 recent items, 10 % known users with a genre filter; /v1/similar: random items.
Prints throughput and p50/p95/p99 latency per route; writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import ROOT, drive_bodies, free_port, start  # noqa: E402

GENRES = ["Comedy", "Drama", "Action", "Thriller", "Romance"]


def ensure_run(run: str | None) -> Path:
    if run:
        return Path(run)
    from tuneforge.config import load_config
    from tuneforge.engine.run import train

    return train(
        load_config(ROOT / "examples/movielens-recommend.yaml", ["output.dir=runs/benchmark-recommend", "output.name=serve"])
    ).run_dir


def bodies(run: Path, n: int = 2000, seed: int = 0) -> tuple[list[bytes], list[bytes]]:
    from tuneforge.tasks.recommend.runtime import Recommender

    catalog = Recommender.load(run).catalog
    rng = np.random.default_rng(seed)
    recommend, similar = [], []
    for _ in range(n):
        draw = rng.random()
        if draw < 0.8:
            body = {"user": str(rng.choice(catalog.users)), "k": 10}
        elif draw < 0.9:
            body = {"items": [str(x) for x in rng.choice(catalog.items, 5, replace=False)], "k": 10}
        else:
            body = {"user": str(rng.choice(catalog.users)), "k": 10, "filters": {"genres": str(rng.choice(GENRES))}}
        recommend.append(json.dumps(body).encode())
        similar.append(json.dumps({"item": str(rng.choice(catalog.items)), "k": 10}).encode())
    return recommend, similar


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/recommend_serve.json")
    args = parser.parse_args()
    run = ensure_run(args.run)
    recommend, similar = bodies(run)
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    env.pop("TUNEFORGE_API_KEYS", None)
    port = free_port()
    proc = start([sys.executable, "-m", "tuneforge.cli", "serve", str(run), "--port", str(port)], port, env)
    results = {}
    try:
        for route, payloads in (("/v1/recommend", recommend), ("/v1/similar", similar)):
            print(f"{route}: {args.concurrency} clients for {args.duration:.0f} s ...", file=sys.stderr, flush=True)
            results[route] = asyncio.run(drive_bodies(f"http://127.0.0.1:{port}{route}", payloads, args.concurrency, args.duration))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"{'route':<15} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'errors':>6}")
    for route, r in results.items():
        print(f"{route:<15} {r['throughput_rps']:>7.1f} {r['p50_ms']:>7.1f} {r['p95_ms']:>7.1f} {r['p99_ms']:>7.1f} {r['errors']:>6}")
    machine = {"python": platform.python_version(), "cpu_count": os.cpu_count(), "machine": platform.machine()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"run": str(run), "concurrency": args.concurrency, "duration_s": args.duration, "machine": machine, "results": results},
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
