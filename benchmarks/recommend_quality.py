"""Every recommender on MovieLens-100K with the same split and seed, side by side; one table, one JSON.

    python benchmarks/recommend_quality.py [--config examples/movielens-recommend.yaml] [--methods popular,als,...]

Each method is a full `tuneforge train` run (fit on train, choose on validation,
refit on train + validation, score the last interaction of every user on test
with full ranking). `als-defaults` is `implicit`'s own defaults (100 factors,
regularisation 0.01), the configuration the issue measured; `ease-unweighted`
weighs a user's whole past equally (no recency), to show where the gain comes from. The cold-start columns
rank each held-out interaction with a never-seen item among the new items only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

VARIANTS = {
    "als-defaults": ("als", ["recommend.factors=100", "recommend.regularization=0.01"]),
    "ease-unweighted": ("ease", ["recommend.recency_half_life=null"]),  # where the gain comes from: recency or the model
}


def run_one(config_path: Path, name: str, runs_dir: Path, seed: int) -> dict:
    from tuneforge.config import load_config
    from tuneforge.engine.run import train

    method, extra = VARIANTS.get(name, (name, []))
    overrides = [f"recommend.method={method}", f"output.dir={runs_dir}", f"output.name={name}", f"train.seed={seed}", *extra]
    result = train(load_config(config_path, overrides))
    m = result.metrics
    cold = m.get("cold_items", {}).get("among_new_items", {})
    cold_all = m.get("cold_items", {}).get("among_all_items", {})
    return {
        "method": name,
        **{key: m[key] for key in ("hr@10", "ndcg@10", "recall@10", "map@10", "coverage@10", "novelty@10", "popularity_percentile@10")},
        "cold_hr@10": cold.get("hr@10"),
        "cold_ndcg@10": cold.get("ndcg@10"),
        "cold_all_hr@10": cold_all.get("hr@10"),
        "validation_ndcg@10": result.train_info.get("best_validation_ndcg@10"),
        "wall_seconds": result.cost["wall_seconds"],
        "run_dir": str(result.run_dir),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("examples/movielens-recommend.yaml"))
    parser.add_argument("--methods", default="popular,als-defaults,als,bpr,ease-unweighted,ease,content,hybrid")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/benchmark-recommend"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/recommend_quality.json"))
    args = parser.parse_args()
    rows = []
    for name in args.methods.split(","):
        print(f"training {name} ...", file=sys.stderr, flush=True)
        rows.append(run_one(args.config, name, args.runs_dir, args.seed))
    baseline = next((r for r in rows if r["method"] == "als-defaults"), None)
    header = f"{'method':<13} {'HR@10':>7} {'NDCG@10':>8} {'MAP@10':>7} {'cover':>6} {'cold HR@10':>10} {'vs ALS HR':>9} {'vs ALS NDCG':>11} {'s':>5}"
    print(header)
    print("-" * len(header))

    def gain(r: dict, key: str) -> str:
        return f"{r[key] / baseline[key] - 1:+.1%}" if baseline and baseline[key] else "-"

    for r in rows:
        cold = f"{r['cold_hr@10']:.4f}" if r["cold_hr@10"] is not None else "-"
        print(
            f"{r['method']:<13} {r['hr@10']:>7.4f} {r['ndcg@10']:>8.4f} {r['map@10']:>7.4f} {r['coverage@10']:>6.3f} {cold:>10} "
            f"{gain(r, 'hr@10'):>9} {gain(r, 'ndcg@10'):>11} {r['wall_seconds']:>5.0f}"
        )
    machine = {"python": platform.python_version(), "cpu_count": os.cpu_count(), "machine": platform.machine()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"config": str(args.config), "seed": args.seed, "machine": machine, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
