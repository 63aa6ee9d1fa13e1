"""Train head, lora, full, tfidf and lstm on BBC News with the same split; print one table, write JSON.

    python benchmarks/classify_quality.py [--methods head,lora,full,tfidf,lstm] [--epochs 2] [--out benchmarks/results/classify_quality.json]
        [--set train.warm_start=none ...] [--fresh-mean-head]

Settings are the demo's per-method defaults (tuneforge/demo.py) except `train.keep`, which stays at
the library default `best` (the floor may keep TF-IDF or the probe); `--epochs` applies to
full and lora, while lstm trains until validation stops improving. Every method uses the same seed, hence the same cleaned data and the same
stratified train/validation/test split. Peak memory is measured per method in a
fresh subprocess (ru_maxrss covers a whole process life, so one process per
method keeps the numbers separate).

`--set KEY=VALUE` (repeatable) overrides any config setting on top of the demo's.
`--fresh-mean-head` is an ablation for the LP-FT pooling question: the classifier
reads the mean-pooled vector (as a warm-started run does) but keeps its fresh
random head instead of the probe's (needs the default train.warm_start=probe).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

# Ablation only: mean pooling inside the classifier, head left as initialised (not the probe's).
FRESH_MEAN_HEAD = (
    "import tuneforge.engine.transformer as engine\n"
    "from tuneforge.models.pooling import use_mean_pooling\n"
    "def _mean_pooling_fresh_head(model, probe, *, logit_std):\n"
    "    assert use_mean_pooling(model)\n"
    "    return 0.0\n"
    "engine._warm_start = _mean_pooling_fresh_head\n"
)

TRAIN_INFO = (
    "warm_start",
    "kept",
    "kept_reason",
    "epochs_done",
    "best_epoch",
    "warm_start_scale",
    "learning_rates",
    "vocabulary_size",
    "parameters",
)


def run_one(method: str, epochs: float, out_dir: Path, seed: int, overrides: list[str] = (), fresh_mean_head: bool = False) -> dict:
    # --epochs is for the fine-tunes; lstm stops early on validation (head and tfidf have no epochs)
    # full/lora: the library's default `keep: best` (the demo keeps the fine-tune to show it); --set overrides it
    epoch_setting = [f"train.epochs={epochs}", "train.keep=best"] if method in ("full", "lora") else []
    overrides = [*epoch_setting, f"train.seed={seed}", *overrides]
    code = (
        "import json, sys\n"
        "from tuneforge.demo import demo_config\n"
        "from tuneforge.engine.run import train\n"
        + (FRESH_MEAN_HEAD if fresh_mean_head else "")
        + f"config = demo_config(method={method!r}, output_dir={str(out_dir)!r}, overrides={overrides!r})\n"
        "result = train(config)\n"
        "info, metric = result.train_info, config.train.metric\n"
        "print(json.dumps({'run_dir': str(result.run_dir), 'accuracy': result.metrics['accuracy'], 'macro_f1': result.metrics['macro_f1'], 'n_test': result.metrics['n'], 'wall_seconds': result.cost['wall_seconds'], 'peak_rss_mb': result.cost['peak_rss_mb'], "
        "'validation_metric': metric, 'best_validation': info.get(f'best_validation_{metric}'), 'probe_validation': info.get(f'probe_validation_{metric}'), 'tfidf_validation': info.get(f'tfidf_validation_{metric}'), "
        f"**{{k: info.get(k) for k in {TRAIN_INFO!r} if k in info}}}}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{method} failed:\n{done.stderr[-3000:]}")
    return {"method": method, **json.loads(done.stdout.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="tfidf,head,lora,full")
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/benchmark"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/classify_quality.json"))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="config override, repeatable")
    parser.add_argument("--fresh-mean-head", action="store_true", help="ablation: mean pooling with a fresh (not warm-started) head")
    args = parser.parse_args()
    rows = []
    for method in args.methods.split(","):
        print(f"training {method} ...", file=sys.stderr, flush=True)
        rows.append(run_one(method, args.epochs, args.runs_dir, args.seed, args.overrides, args.fresh_mean_head))
    header = f"{'method':<7} {'test acc':>8} {'macro-F1':>8} {'train+eval s':>12} {'peak MB':>8}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['method']:<7} {r['accuracy']:>8.4f} {r['macro_f1']:>8.4f} {r['wall_seconds']:>12.1f} {r['peak_rss_mb']:>8.0f}")
    machine = {"python": platform.python_version(), "cpu_count": __import__("os").cpu_count(), "machine": platform.machine()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "dataset": "bundled:bbc-news",
                "model": "minilm-l6",
                "epochs": args.epochs,
                "seed": args.seed,
                "overrides": args.overrides,
                "fresh_mean_head": args.fresh_mean_head,
                "machine": machine,
                "results": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
