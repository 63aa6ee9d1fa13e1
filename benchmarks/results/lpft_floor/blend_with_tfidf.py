"""Ablation (issue #17): a 50/50 blend of a transformer run's and the TF-IDF run's probabilities, on the same split.

    python benchmarks/results/lpft_floor/blend_with_tfidf.py RUNS_DIR

RUNS_DIR holds the run folders of `../lpft_seeds/` (classify_quality.py --runs-dir ...): tfidf, head, lora and
full runs for seeds 42, 1, 2. Prints validation and test accuracy of each run, of TF-IDF, and of the blend.
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from tuneforge.predict.predictor import Predictor


def setting(run: Path, key: str) -> str:
    return next(line.split()[-1] for line in (run / "config.yaml").read_text().splitlines() if line.strip().startswith(f"{key}:"))


runs = [d for d in sorted(Path(sys.argv[1]).iterdir()) if (d / "run.json").exists()]
by_key = {(d.name.split("-")[1], int(setting(d, "seed")), setting(d, "max_length")): d for d in runs}
for (method, seed, length), run in sorted(by_key.items()):
    tfidf = next((d for (m, s, _), d in by_key.items() if m == "tfidf" and s == seed), None)
    if method == "tfidf" or tfidf is None:
        continue
    cells = []
    for split in ("validation", "test"):
        frame = pd.read_json(run / "splits" / f"{split}.jsonl", lines=True)
        mine, base = Predictor.load(run), Predictor.load(tfidf)
        y = np.array([mine.labels.index(label) for label in frame["label"]])
        p, q = mine.predict_proba(frame["text"].tolist()), base.predict_proba(frame["text"].tolist())
        cells.append(
            {name: round(float((probs.argmax(1) == y).mean()), 4) for name, probs in (("run", p), ("tfidf", q), ("blend", (p + q) / 2))}
        )
    print(f"seed {seed} {method} ({length} tokens): validation {cells[0]}  test {cells[1]}", flush=True)
