"""Print the BBC News table of issue #17 with the TF-IDF floor (markdown), from the JSON files beside this script.

`full` and `lora` at their demo settings (2 epochs, 128 tokens) with today's defaults, which now include
`train.floor: [probe, tfidf]`: the run keeps a baseline that beats the fine-tune on validation. Seeds 42, 1, 2,
each its own split. For reference, from `../lpft_seeds/` (same code without the TF-IDF floor, same seeds):
`tfidf`, `head` and the fine-tunes as they were kept then; and the code before LP-FT (`../lpft_ablation/before-*`).
"""

import json
import statistics
from pathlib import Path

HERE = Path(__file__).parent
SEEDS = (42, 1, 2)


def load(path: Path) -> dict | None:
    return json.loads(path.read_text())["results"][0] if path.exists() else None


rows = {
    "tfidf": {s: load(HERE.parent / "lpft_seeds" / f"tfidf-seed{s}.json") for s in SEEDS},
    "head (256 tokens)": {s: load(HERE.parent / "lpft_seeds" / f"head-seed{s}.json") for s in SEEDS},
    "full, old recipe (before LP-FT)": {s: load(HERE.parent / "lpft_ablation" / f"before-seed{s}.json") for s in SEEDS},
    "full, floor = probe (last session)": {s: load(HERE.parent / "lpft_seeds" / f"full-seed{s}.json") for s in SEEDS},
    "lora, floor = probe (last session)": {s: load(HERE.parent / "lpft_seeds" / f"lora-seed{s}.json") for s in SEEDS},
    "full, floor = probe + tfidf (now)": {s: load(HERE / f"full-seed{s}.json") for s in SEEDS},
    "lora, floor = probe + tfidf (now)": {s: load(HERE / f"lora-seed{s}.json") for s in SEEDS},
}
head = rows["head (256 tokens)"]

print("| run | " + " | ".join(f"test acc, seed {s} (kept)" for s in SEEDS) + " | mean ± std | ≥ head on | seconds (mean) |")
print("|---|" + "---|" * (len(SEEDS) + 3))
for name, by_seed in rows.items():
    runs = {s: r for s, r in by_seed.items() if r is not None}
    if not runs:
        continue
    cells = []
    for s in SEEDS:
        r = runs.get(s)
        cells.append(
            "—" if r is None else f"{r['accuracy']:.4f} ({round(r['accuracy'] * r['n_test'])}{', ' + r['kept'] if r.get('kept') else ''})"
        )
    accs = [r["accuracy"] for r in runs.values()]
    spread = f"{statistics.mean(accs):.4f} ± {statistics.stdev(accs):.4f}" if len(accs) > 1 else f"{accs[0]:.4f}"
    at_least = sum(runs[s]["accuracy"] >= head[s]["accuracy"] for s in runs if head.get(s))
    seconds = statistics.mean(r["wall_seconds"] for r in runs.values())
    print(f"| {name} | {' | '.join(cells)} | {spread} | {at_least}/{len(runs)} | {seconds:.0f} |")

print()
print("Validation (the run's `train.metric`, macro-F1) that decided what each run kept:")
print()
print("| run | seed | fine-tuned | probe | tfidf | kept |")
print("|---|---|---|---|---|---|")
for method in ("full", "lora"):
    for s in SEEDS:
        r = load(HERE / f"{method}-seed{s}.json")
        if r is None:
            continue
        cell = lambda v: "—" if v is None else f"{v:.4f}"  # noqa: E731
        print(
            f"| {method} | {s} | {cell(r.get('best_validation'))} | {cell(r.get('probe_validation'))} | {cell(r.get('tfidf_validation'))} | {r.get('kept')} |"
        )
