"""Ablation (issue #17): the frozen-encoder probe on BBC News, first window vs the mean of every window's embedding.

    python benchmarks/results/lpft_floor/window_mean_probe.py HEAD_RUN_DIR 128 256

HEAD_RUN_DIR is a `head` run (its model folder holds the frozen encoder, its splits the data)."""

import sys, time
import numpy as np, pandas as pd
from pathlib import Path
from sklearn.linear_model import LogisticRegression
from tuneforge.models.loading import load_encoder, load_tokenizer
from tuneforge.models.encode import embed_texts
from tuneforge.predict.chunking import split_windows

run = Path(sys.argv[1])
folder = run / "model"
tok = load_tokenizer(folder, name="minilm-l6")
enc = load_encoder(folder, name="minilm-l6")
frames = {s: pd.read_json(run / f"splits/{s}.jsonl", lines=True) for s in ("train", "validation", "test")}
for L in [int(x) for x in sys.argv[2:]]:
    t = time.time()
    feats = {}
    for s, f in frames.items():
        texts = f["text"].tolist()
        first = embed_texts(enc, tok, texts, max_length=L, batch_size=64, pooling="mean")
        pieces, owners = split_windows(tok, texts, max_length=L)
        w = embed_texts(enc, tok, pieces, max_length=L, batch_size=64, pooling="mean")
        mean = np.zeros((len(texts), w.shape[1]))
        np.add.at(mean, owners, w)
        mean /= np.bincount(owners)[:, None]
        feats[s] = {"first": first, "chunkmean": mean}
        if s == "train":
            print("windows per text", len(pieces) / len(texts))
    for kind in ("first", "chunkmean"):
        best = None
        for c in (0.1, 1, 10, 100):
            m = LogisticRegression(C=c, max_iter=3000).fit(feats["train"][kind], frames["train"]["label"])
            v = m.score(feats["validation"][kind], frames["validation"]["label"])
            if best is None or v > best[0]:
                best = (v, c, m)
        print(
            L,
            kind,
            "C",
            best[1],
            "val",
            round(best[0], 4),
            "test",
            round(best[2].score(feats["test"][kind], frames["test"]["label"]), 4),
            flush=True,
        )
    print("seconds", round(time.time() - t))
