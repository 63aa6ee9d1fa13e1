"""Ablation (issue #17): test accuracy of run folders, scoring the first window only vs every window averaged.

python benchmarks/results/lpft_floor/chunked_prediction.py RUN_DIR [RUN_DIR ...]
"""

import json, sys, time
from pathlib import Path
import numpy as np, pandas as pd
from tuneforge.predict.predictor import Predictor

for run in sys.argv[1:]:
    run = Path(run)
    test = pd.read_json(run / "splits/test.jsonl", lines=True)
    cfg = (run / "config.yaml").read_text()
    seed = [l for l in cfg.splitlines() if l.strip().startswith("seed:")][0].split()[-1]
    ws = [l for l in cfg.splitlines() if "warm_start:" in l][0].split()[-1]
    hl = [l for l in cfg.splitlines() if "head_learning_rate:" in l][0].split()[-1]
    ml = [l for l in cfg.splitlines() if l.strip().startswith("max_length:")][0].split()[-1]
    out = {}
    for mode in ("truncate", "chunk"):
        p = Predictor.load(run, long_texts=mode)
        t = time.time()
        preds = p.predict(test["text"].tolist())
        labels = [x.label for x in preds]
        out[mode] = (round(float(np.mean(np.array(labels) == test["label"].to_numpy())), 4), round(time.time() - t, 1))
    print(run.name, "seed", seed, "warm", ws, "headlr", hl, "maxlen", ml, out, flush=True)
