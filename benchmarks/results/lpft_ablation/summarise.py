"""Print the LP-FT ablation table (markdown) from the JSON files beside this script."""

import json
import statistics
from pathlib import Path

HERE = Path(__file__).parent
POOLING = {"probe": "mean", "none": "CLS pooler", "before": "CLS pooler", "probe-headlr1e-4": "mean", "mean-fresh": "mean",
           "fix": "mean"}  # fmt: skip
# mean-fresh runs report warm_start "probe" (the ablation hook stands in for the warm start) but keep their fresh head
rows = []
for path in sorted(HERE.glob("*-seed*.json")):
    data = json.loads(path.read_text())
    r = data["results"][0]
    name = path.stem.rsplit("-seed", 1)[0]
    rows.append((name, data["seed"], r, data.get("overrides", [])))
order = list(POOLING)
rows.sort(key=lambda x: (order.index(x[0]) if x[0] in order else 99, [42, 1, 2].index(x[1]) if x[1] in (42, 1, 2) else 9))
print("| run | seed | warm_start | pooling | head lr | val macro-F1 (best) | probe val | test acc | test macro-F1 | seconds | kept |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for name, seed, r, _ in rows:
    pv = r.get("probe_validation")
    print(
        f"| {name} | {seed} | {'none (fresh head)' if name == 'mean-fresh' else r.get('warm_start')} | {POOLING.get(name, '?')} | {r['learning_rates']['head']:g} | {r['best_validation']:.4f} | "
        f"{'—' if pv is None else f'{pv:.4f}'} | {r['accuracy']:.4f} ({round(r['accuracy'] * r['n_test'])}/{r['n_test']}) | {r['macro_f1']:.4f} | {r['wall_seconds']:.0f} | {r.get('kept')} |"
    )
print()
print("| configuration | n | val macro-F1 mean ± std | test acc mean ± std | test macro-F1 mean ± std |")
print("|---|---|---|---|---|")
for name in dict.fromkeys(n for n, *_ in rows):
    sel = [r for n, _, r, _ in rows if n == name]

    def ms(key, sel=sel):
        v = [r[key] for r in sel]
        return f"{statistics.mean(v):.4f} ± {statistics.stdev(v):.4f}" if len(v) > 1 else f"{v[0]:.4f}"

    print(f"| {name} | {len(sel)} | {ms('best_validation')} | {ms('accuracy')} | {ms('macro_f1')} |")
