"""Print the multi-seed BBC News table of issue #17 (markdown) from the JSON files beside this script.

Every method at its demo settings (tuneforge/demo.py) with today's defaults (LP-FT warm start,
per-group learning rates, `keep: best`, bf16 where native), seeds 42, 1 and 2: each seed is its own
split, so the spread is split noise plus training noise. "old recipe" is the code before LP-FT
(`../lpft_ablation/before-seed*.json`, fp32), for reference.
"""

import json
import statistics
from pathlib import Path

HERE = Path(__file__).parent
SEEDS = (42, 1, 2)
METHODS = ("tfidf", "head", "lora", "full", "lora-256", "full-256")  # -256: train.max_length=256, the head's length


def load(path: Path) -> dict:
    return json.loads(path.read_text())["results"][0]


runs = {m: {s: load(HERE / f"{m}-seed{s}.json") for s in SEEDS if (HERE / f"{m}-seed{s}.json").exists()} for m in METHODS}
runs["full, old recipe"] = {s: load(HERE.parent / "lpft_ablation" / f"before-seed{s}.json") for s in SEEDS}


def mean_std(values: list[float]) -> str:
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}" if len(values) > 1 else f"{values[0]:.4f}"


print(
    "| method | " + " | ".join(f"test acc, seed {s}" for s in SEEDS) + " | mean ± std | macro-F1 mean | ≥ head on | kept | seconds (mean) |"
)
print("|---|" + "---|" * (len(SEEDS) + 5))
head = runs["head"]
for method, by_seed in runs.items():
    if not by_seed:
        continue
    accs = [by_seed[s]["accuracy"] for s in SEEDS if s in by_seed]
    cells = [
        f"{by_seed[s]['accuracy']:.4f} ({round(by_seed[s]['accuracy'] * by_seed[s]['n_test'])})" if s in by_seed else "—" for s in SEEDS
    ]
    at_least = sum(by_seed[s]["accuracy"] >= head[s]["accuracy"] for s in SEEDS if s in by_seed and s in head)
    kept = ", ".join(sorted({str(r.get("kept")) for r in by_seed.values() if r.get("kept")})) or "—"
    seconds = statistics.mean(r["wall_seconds"] for r in by_seed.values())
    print(
        f"| {method} | {' | '.join(cells)} | {mean_std(accs)} | {statistics.mean(r['macro_f1'] for r in by_seed.values()):.4f} | "
        f"{at_least}/{len(by_seed)} | {kept} | {seconds:.0f} |"
    )
