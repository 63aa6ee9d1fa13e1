"""Train several methods from one example config on the same split; print one table beside the task's plain baseline.

    python benchmarks/task_quality.py --config examples/movielens-genres-full.yaml --methods tfidf,head,lora,full
    python benchmarks/task_quality.py --config examples/bbc-entities-full.yaml --methods full,lora
    python benchmarks/task_quality.py --config examples/chatterbot-questions.yaml --methods tfidf,lstm,head

Every method uses the config's seed, hence the same cleaned data and the same split.
Each run is a fresh subprocess, so peak memory is per method. Entities have no
tfidf/head method; their baseline is a gazetteer: every string marked as an
entity in the training split is tagged wherever it occurs in a test sentence.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
from pathlib import Path

HEADLINE = {
    "multilabel": ("micro_f1", "macro_f1", "accuracy"),
    "entities": ("micro_f1", "macro_f1", "accuracy"),
    "classify": ("accuracy", "macro_f1", "micro_f1"),
}


def run_one(config: Path, method: str, runs_dir: Path, extra: list[str]) -> dict:
    code = (
        "import json, sys\n"
        "from tuneforge.config import load_config\n"
        "from tuneforge.engine.run import train\n"
        f"config = load_config({str(config)!r}, {[f'train.method={method}', f'output.dir={runs_dir}', *extra]!r})\n"
        "result = train(config)\n"
        "print(json.dumps({'run_dir': str(result.run_dir), 'metrics': {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))}, "
        "'wall_seconds': result.cost['wall_seconds'], 'peak_rss_mb': result.cost['peak_rss_mb'], "
        "'train': {k: v for k, v in result.train_info.items() if k in ('kept', 'kept_reason', 'warm_start') or '_validation_' in k}}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{method} failed:\n{done.stderr[-3000:]}")
    return {"method": method, **json.loads(done.stdout.strip().splitlines()[-1])}


def gazetteer_baseline(run_dir: str) -> dict:
    """Tag every occurrence (whole words) of every training entity string with its most frequent type."""
    from collections import Counter, defaultdict

    from tuneforge.rundir import RunDir
    from tuneforge.tasks.entities.metrics import entity_metrics

    run = RunDir(run_dir)
    types: dict[str, Counter] = defaultdict(Counter)
    for text, spans in zip(run.read_split("train")["text"], run.read_split("train")["label"]):
        for s in spans:
            types[text[s["start"] : s["end"]]][s["label"]] += 1
    lexicon = {name: counts.most_common(1)[0][0] for name, counts in types.items()}
    pattern = re.compile("|".join(rf"(?<!\w){re.escape(n)}(?!\w)" for n in sorted(lexicon, key=len, reverse=True)))
    _, test = run.evaluation_split()
    predicted = [
        [{"start": m.start(), "end": m.end(), "label": lexicon[m.group()]} for m in pattern.finditer(text)] for text in test["text"]
    ]
    labels = sorted({s["label"] for spans in test["label"] for s in spans})
    metrics = entity_metrics(test["label"].tolist(), predicted, labels)
    return {
        "method": "gazetteer (baseline)",
        "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
        "wall_seconds": None,
        "peak_rss_mb": None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--methods", default="tfidf,head,full")
    parser.add_argument("--set", action="append", default=[], help="extra KEY=VALUE overrides for every run")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/benchmark"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    import yaml

    task = yaml.safe_load(args.config.read_text()).get("task", "classify")
    rows = []
    for method in args.methods.split(","):
        print(f"training {method} ...", file=sys.stderr, flush=True)
        rows.append(run_one(args.config.resolve(), method, args.runs_dir, args.set))
    if task == "entities":
        rows.insert(0, gazetteer_baseline(rows[0]["run_dir"]))
    keys = HEADLINE[task]
    header = f"{'method':<22}" + "".join(f"{k:>10}" for k in keys) + f"{'seconds':>9}{'peak MB':>9}  kept"
    print(header)
    print("-" * len(header))
    for r in rows:
        seconds = f"{r['wall_seconds']:>9.0f}" if r["wall_seconds"] is not None else f"{'-':>9}"
        memory = f"{r['peak_rss_mb']:>9.0f}" if r["peak_rss_mb"] is not None else f"{'-':>9}"
        kept = (r.get("train") or {}).get("kept", "")  # full/lora: the fine-tune, or the floor baseline that beat it
        print(f"{r['method']:<22}" + "".join(f"{r['metrics'].get(k, float('nan')):>10.4f}" for k in keys) + seconds + memory + f"  {kept}")
    out = args.out or Path("benchmarks/results") / f"{args.config.stem}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"python": platform.python_version(), "cpu_count": __import__("os").cpu_count(), "machine": platform.machine()}
    out.write_text(
        json.dumps({"config": str(args.config), "task": task, "overrides": args.set, "machine": machine, "results": rows}, indent=2) + "\n"
    )
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
