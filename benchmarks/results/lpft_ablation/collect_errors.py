"""Copy each run's misclassified test articles (eval/errors.csv in its run folder) into errors.json,
and print paired comparisons on the same split (same seed): articles only A gets wrong / only B gets wrong."""

import csv
import json
from itertools import combinations
from pathlib import Path

HERE = Path(__file__).parent
errors = {}
for path in sorted(HERE.glob("*-seed*.json")):
    run_dir = Path(json.loads(path.read_text())["results"][0]["run_dir"])
    with open(run_dir / "eval" / "errors.csv", newline="") as f:
        errors[path.stem] = sorted(row["source"] for row in csv.DictReader(f))
(HERE / "errors.json").write_text(json.dumps(errors, indent=1) + "\n")
for seed in (42, 1, 2):
    runs = {k.rsplit("-seed", 1)[0]: set(v) for k, v in errors.items() if k.endswith(f"-seed{seed}")}
    for a, b in combinations(sorted(runs), 2):
        print(f"seed {seed}: {a} vs {b}: only {a} wrong {len(runs[a] - runs[b])}, only {b} wrong {len(runs[b] - runs[a])}")
