"""File scoring: `predict --engine local` vs `--engine ray`, side by side on one file, and the same bytes.

    python benchmarks/score_engines.py [--rows 20000] [--method head] [--workers 2]

Trains one run on `bundled:bbc-news` (`head`: frozen MiniLM + logistic head, or `tfidf`),
then scores a file of `--rows` rows (BBC articles resampled with replacement to reach
the size; said in the output) twice, one after the other, in fresh processes:
`tuneforge predict` in this process's way (all cores to one model) and with
`--engine ray --workers N` (a local Ray, N actors, one model and cores/N threads each).
Prints rows/s of each, the ratio, and whether the output files are byte-identical.
On one machine Ray cannot be faster than one process using every core; it pays when
`--address` names a cluster with more machines. This measures what the fan-out costs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--method", default="head", choices=["head", "tfidf"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "score_engines.json"))
    args = parser.parse_args()

    from tuneforge.config import validate_config
    from tuneforge.data.bundled import load_bbc_news
    from tuneforge.engine.run import train

    work = Path(tempfile.mkdtemp(prefix="score-engines-"))
    config = validate_config(
        {"data": {"train": "bundled:bbc-news"}, "train": {"method": args.method, "seed": 0}, "output": {"dir": str(work / "runs")}}
    )
    run_dir = train(config).run_dir
    articles = load_bbc_news()
    frame = articles.sample(n=args.rows, replace=True, random_state=0).reset_index(drop=True)
    frame.insert(0, "id", range(len(frame)))
    source = work / "in.csv"
    frame[["id", "text"]].to_csv(source, index=False)

    results = {}
    for engine in ("local", "ray"):
        extra = ["--engine", "ray", "--workers", str(args.workers)] if engine == "ray" else []
        target = work / f"out-{engine}.csv"
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "tuneforge.cli", "predict", str(run_dir), "-i", str(source), "-o", str(target), *extra], check=True
        )
        seconds = time.perf_counter() - started  # process start and model loading included, as a user sees it
        results[engine] = {"seconds": round(seconds, 2), "rows_per_second": round(args.rows / seconds, 1)}
    identical = (work / "out-local.csv").read_bytes() == (work / "out-ray.csv").read_bytes()
    report = {
        "rows": args.rows,
        "data": "bundled:bbc-news articles resampled with replacement to the row count",
        "method": args.method,
        "workers": args.workers,
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "engines": results,
        "ray_over_local": round(results["ray"]["rows_per_second"] / results["local"]["rows_per_second"], 3),
        "identical_output": identical,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'engine':<8}{'seconds':>10}{'rows/s':>10}")
    for engine, r in results.items():
        print(f"{engine:<8}{r['seconds']:>10}{r['rows_per_second']:>10}")
    print(f"ray / local rows/s: {report['ray_over_local']}x; identical output: {identical}")


if __name__ == "__main__":
    main()
