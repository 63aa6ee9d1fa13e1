"""Training in 1 vs N processes on this machine's CPU: `tuneforge train` and `tuneforge train --nproc N`, side by side.

    python benchmarks/ddp_speed.py [--rows 2000] [--epochs 1] [--nproc 1,2] [--model minilm-l6]

Every run trains the same rows with the same global batch (`train.batch_size`; under N processes each takes
batch/N), one after another in fresh processes, never two at once. The machine's cores are split between the
processes (`OMP_NUM_THREADS = cores // N`, as `--nproc` does), so each row compares the same hardware used
two ways. Texts/s is the training loop only (evaluation excluded), summed over the processes; "wall" is the
whole command, start-up and evaluation included. Test accuracy should be close across rows (same global batch,
same examples in each step) but not equal: each process draws its own dropout masks (without dropout the runs
agree to float noise, tests/test_distributed.py). Writes benchmarks/results/ddp_speed.json.

`--project [--device-speed S] [--batch-size B]` prints the throughput PROJECTION for 1-16 devices from one
device's measured speed S (e.g. run.json train.throughput.train_texts_per_second of a one-GPU run).

Check it quickly on a tiny random model: `--model TINY_BERT --data tests/data/reviews_train.csv --text-column review
--label-column sentiment --rows 0 --max-length 32 --batch-size 8`.
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

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _config(folder: Path, args) -> Path:
    config = {
        "data": {"train": args.data, "text_column": args.text_column, "label_column": args.label_column}
        | ({"max_rows": args.rows} if args.rows else {}),
        "model": {"name": args.model},
        "train": {
            "method": "full",
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "max_length": args.max_length,
            "early_stopping_patience": None,
            "warm_start": "none",
            "keep": "fine-tuned",
            "seed": 42,
        },
        "output": {"dir": str(folder / "runs")},
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _run(config: Path, nproc: int, batch_size: int) -> dict:
    cores = os.cpu_count() or 1
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": str(max(1, cores // nproc)), "HF_HUB_OFFLINE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "tuneforge.cli", "-q", "train", str(config)] + (["--nproc", str(nproc)] if nproc > 1 else [])
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    run_dir = Path(done.stdout.strip().splitlines()[-1])
    info = json.loads((run_dir / "run.json").read_text())
    speed = info["train"].get("throughput", {})
    return {
        "processes": nproc,
        "threads_per_process": int(env["OMP_NUM_THREADS"]),
        "per_device_batch": (info["train"].get("distributed") or {}).get("per_device_batch", batch_size),
        "global_step": info["train"]["global_step"],
        "train_texts_per_second": speed.get("train_texts_per_second"),
        "train_seconds": speed.get("train_seconds"),
        "wall_seconds": round(wall, 1),
        "test_accuracy": info["metrics"]["accuracy"],
        "train_loss": info["train"]["train_loss"],
        "run_dir": str(run_dir),
    }


def projected_texts_per_second(
    n: int, *, device_speed: float, global_batch: int, grad_mb: float, gb_per_s: float, latency_s: float
) -> float:
    """PROJECTION, not a measurement: N devices with a ring all-reduce and no overlap of compute and communication.

    step time = compute of global_batch/N examples at `device_speed` texts/s
              + 2(N-1)/N x gradient bytes / bandwidth + 2(N-1) x latency.
    DDP overlaps the all-reduce with the backward pass, so real runs can do better; a slower per-device
    speed at small per-device batches can make them do worse."""
    compute = global_batch / n / device_speed
    exchange = 0.0 if n == 1 else 2 * (n - 1) / n * grad_mb / 1000 / gb_per_s + 2 * (n - 1) * latency_s
    return global_batch / (compute + exchange)


def print_projection(args) -> None:
    print(f"PROJECTION (a model, not a measurement): {args.device_speed} texts/s per device, global batch {args.batch_size},")
    print(f"{args.grad_mb} MB of gradients; links: " + ", ".join(f"{name} {bw} GB/s" for name, bw in LINKS.items()))
    print(f"{'devices':>7} " + " ".join(f"{name:>22}" for name in LINKS))
    for n in (1, 2, 4, 8, 16):
        cells = []
        for bw in LINKS.values():
            speed = projected_texts_per_second(
                n, device_speed=args.device_speed, global_batch=args.batch_size, grad_mb=args.grad_mb, gb_per_s=bw, latency_s=5e-5
            )
            cells.append(f"{speed:>12,.0f} ({speed / args.device_speed:>4.1f}x)")
        print(f"{n:>7} " + " ".join(f"{c:>22}" for c in cells))


# effective all-reduce bandwidths (bus bandwidth, GB/s); orders of magnitude, not vendor peaks
LINKS = {"NVLink node": 100.0, "PCIe node": 10.0, "100 GbE cluster": 10.0, "10 GbE cluster": 1.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="bundled:bbc-news")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--rows", type=int, default=2000, help="rows read from the data (0: all)")
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--batch-size", type=int, default=16, help="global batch (examples per optimiser step)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--nproc", default="1,2", help="comma-separated process counts; the first is the baseline")
    parser.add_argument("--project", action="store_true", help="print the N-device projection only (no training)")
    parser.add_argument("--device-speed", type=float, default=1000.0, help="texts/s of one device, for --project")
    parser.add_argument("--grad-mb", type=float, default=90.8, help="gradient size in MB, for --project (MiniLM-L6: 22.7M x 4 B)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ddp_speed.json")
    args = parser.parse_args()
    if args.project:
        print_projection(args)
        return

    rows = []
    with tempfile.TemporaryDirectory(prefix="ddp-speed-") as tmp:
        for n in [int(x) for x in args.nproc.split(",")]:
            rows.append(_run(_config(Path(tmp) / f"n{n}", args), n, args.batch_size))
            print(f"{n} process(es): {rows[-1]['train_texts_per_second']} texts/s", file=sys.stderr, flush=True)
    base = rows[0]
    print(f"{'processes':>9} {'threads':>7} {'batch/dev':>9} {'steps':>5} {'texts/s':>8} {'x base':>6} {'wall s':>7} {'accuracy':>8}")
    for r in rows:
        ratio = (r["train_texts_per_second"] or 0) / (base["train_texts_per_second"] or 1)
        r["speed_ratio"] = round(ratio, 3)
        print(
            f"{r['processes']:>9} {r['threads_per_process']:>7} {r['per_device_batch']:>9} {r['global_step']:>5} "
            f"{r['train_texts_per_second']:>8} {ratio:>6.2f} {r['wall_seconds']:>7} {r['test_accuracy']:>8.4f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(), "python": platform.python_version()}
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    args.out.write_text(json.dumps({"machine": machine, "settings": settings, "rows": rows}, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
