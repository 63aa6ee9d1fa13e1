"""What a 10-trial TPE study buys over the usual default recipe, for the `head` and `lora` methods.

    python benchmarks/tune_gain.py [--trials 10] [--max-rows 600] [--methods head,lora]

Default recipe (the one most fine-tuning guides start from): AdamW lr 2e-5,
3 epochs, max length 128 (for `head`: mean pooling, C=1, 128 tokens). The study
searches the space below with TPE and median pruning. Both see the same
stratified subsample of BBC News (`data.max_rows`) and the same split; the
study picks on validation, and both are reported on the same test split.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tuneforge.config import load_config
from tuneforge.engine.run import train
from tuneforge.rundir import RunDir
from tuneforge.tune.study import tune

BASE = {"data": {"train": "bundled:bbc-news"}, "model": {"name": "minilm-l6"}}
DEFAULTS = {
    "lora": {"method": "lora", "learning_rate": 2e-5, "epochs": 3, "max_length": 128},
    "head": {"method": "head", "max_length": 128, "head": {"c_grid": [1.0]}},
}
# The study's head trials pick C on validation from tuneforge's default grid (0.1, 1, 10).
STUDY_TRAIN = {
    "lora": DEFAULTS["lora"],
    "head": {"method": "head", "max_length": 128},
}
SPACES = {
    "lora": {
        "train.learning_rate": {"low": 1e-4, "high": 3e-3, "log": True},
        "train.epochs": {"choices": [1, 2, 3]},
        "train.lora.r": {"choices": [4, 8, 16]},
        "train.warmup_ratio": {"low": 0.0, "high": 0.2},
    },
    "head": {
        "train.max_length": {"choices": [128, 256, 384]},
        "train.head.pooling": {"choices": ["mean", "cls"]},
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="head,lora")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--max-rows", type=int, default=600)
    parser.add_argument("--dir", default="runs/tune-gain")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/tune_gain.json"))
    args = parser.parse_args()
    rows = []
    for method in args.methods.split(","):
        base = {**BASE, "data": {**BASE["data"], "max_rows": args.max_rows}, "output": {"dir": f"{args.dir}/{method}"}}
        print(f"{method}: default recipe ...", file=sys.stderr, flush=True)
        default = train(load_config(None, base={**base, "train": DEFAULTS[method]}))
        info = RunDir(default.run_dir).info()
        rows.append(
            {
                "method": method,
                "recipe": "default",
                "validation_macro_f1": info["train"]["best_validation_macro_f1"],
                "test_macro_f1": default.metrics["macro_f1"],
                "test_accuracy": default.metrics["accuracy"],
                "wall_seconds": default.cost["wall_seconds"],
            }
        )
        print(f"{method}: {args.trials}-trial TPE study ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        config = load_config(
            None,
            base={
                **base,
                "train": STUDY_TRAIN[method],
                "tune": {"space": SPACES[method], "trials": args.trials, "seed": 0, "study_name": f"gain-{method}"},
            },
        )
        study = tune(config)
        best = json.loads((study.study_dir / "best.json").read_text())
        rows.append(
            {
                "method": method,
                "recipe": f"TPE {args.trials} trials",
                "validation_macro_f1": study.best_value,
                "test_macro_f1": best["test_macro_f1"],
                "test_accuracy": best["test_accuracy"],
                "wall_seconds": round(time.perf_counter() - started, 1),
                "best_params": study.best_params,
            }
        )
    print(f"{'method':<6} {'recipe':<16} {'val macro-F1':>12} {'test macro-F1':>13} {'test acc':>8} {'wall s':>8}")
    for r in rows:
        print(
            f"{r['method']:<6} {r['recipe']:<16} {r['validation_macro_f1']:>12.4f} {r['test_macro_f1']:>13.4f} {r['test_accuracy']:>8.4f} {r['wall_seconds']:>8.0f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"dataset": "bundled:bbc-news", "max_rows": args.max_rows, "trials": args.trials, "results": rows}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
