"""Does `data.augment` help with little data? k-shot BBC News topics, tfidf and head, with and without augmentation.

    python benchmarks/augment_kshot.py [--k 8 32 128] [--seeds 5] [--copies 2] [--probability 0.1]
    python benchmarks/augment_kshot.py --k 8 --seeds 1 --test-per-class 20   # a quick check only
    python benchmarks/augment_kshot.py --methods tfidf --out benchmarks/results/augment_kshot_tfidf.json   # one method per run

Protocol (no test leakage):
- The 2,225 BBC articles (whitespace collapsed, as a run cleans them) are split once
  (seed 0): `--test-per-class` articles per topic are the fixed test set, the rest
  the pool k-shot training rows are drawn from.
- Per seed and k: k articles per topic drawn from the pool with that seed train
  both arms. The augmented arm adds the copies `data.augment` makes (tuneforge's
  own `augment_frame` and neighbour table: all four operations, `--copies` per
  text, `--probability` of words, neighbours from MiniLM's input embeddings,
  seed = the run seed). Test texts are never augmented.
- tfidf: tuneforge's tfidf settings (1-2 grams, sublinear tf, C=10). head: frozen
  MiniLM (`minilm-l6`, mean-pooled, first `--max-length` tokens, tuneforge's
  default 128) + logistic regression (C=1). The test set and each original article
  are embedded once per process; only the copies are embedded per seed.

Prints mean ± std over seeds (accuracy, macro-F1) and the paired gain, and writes
JSON to benchmarks/results/augment_kshot.json and a plot beside it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from tuneforge.data.augment import OPERATIONS, augment_frame
from tuneforge.data.bundled import load_bundled
from tuneforge.data.clean import normalize_text
from tuneforge.models.encode import embed_texts
from tuneforge.models.loading import load_encoder, load_tokenizer
from tuneforge.models.neighbours import neighbour_table
from tuneforge.models.registry import resolve_model

MODEL = "minilm-l6"
METHODS = ("tfidf", "head")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Embedder:
    """MiniLM sentence vectors, each distinct text embedded once per process."""

    def __init__(self, max_length: int):
        path = resolve_model(MODEL)
        self.encoder, self.tokenizer = load_encoder(path, name=MODEL), load_tokenizer(path, name=MODEL)
        self.max_length, self.cache, self.seconds = max_length, {}, 0.0

    def __call__(self, texts: list[str]) -> np.ndarray:
        todo = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if todo:
            started = time.perf_counter()
            vectors = embed_texts(self.encoder, self.tokenizer, todo, max_length=self.max_length, batch_size=32, pooling="mean")
            self.cache.update(zip(todo, vectors))
            self.seconds += time.perf_counter() - started
        return np.stack([self.cache[t] for t in texts])


def split(frame: pd.DataFrame, per_class: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pool, test): a fixed test set of `per_class` articles per topic, seed 0."""
    test = frame.groupby("label", group_keys=False).sample(n=per_class, random_state=0)
    return frame.drop(test.index).reset_index(drop=True), test.reset_index(drop=True)


def draw(pool: pd.DataFrame, k: int, seed: int) -> pd.DataFrame:
    return pool.groupby("label", group_keys=False).sample(n=k, random_state=seed).reset_index(drop=True)


def scores(truth, predicted) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    return {"accuracy": float(accuracy_score(truth, predicted)), "macro_f1": float(f1_score(truth, predicted, average="macro"))}


def fit_tfidf(train: pd.DataFrame, test: pd.DataFrame) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True, strip_accents="unicode", max_features=50_000)
    x = vectorizer.fit_transform(train["text"])
    model = LogisticRegression(C=10.0, max_iter=2000).fit(x, train["label"])
    return scores(test["label"], model.predict(vectorizer.transform(test["text"])))


def fit_head(train: pd.DataFrame, test: pd.DataFrame, embed: Embedder, x_test: np.ndarray) -> dict:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1.0, max_iter=2000).fit(embed(train["text"].tolist()), train["label"])
    return scores(test["label"], model.predict(x_test))


def summary(values: list[float]) -> dict:
    return {"mean": round(float(np.mean(values)), 4), "std": round(float(np.std(values)), 4), "n": len(values)}


def plot(table: dict, ks: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(table)
    fig, axes = plt.subplots(1, len(methods), figsize=(4.5 * len(methods), 3.4), sharey=True, squeeze=False)
    axes = axes[0]
    for ax, method in zip(axes, methods):
        for arm, style in (("plain", "o-"), ("augmented", "s--")):
            means = [table[method][str(k)][arm]["accuracy"]["mean"] for k in ks]
            stds = [table[method][str(k)][arm]["accuracy"]["std"] for k in ks]
            ax.errorbar(ks, means, yerr=stds, fmt=style, capsize=3, label=arm)
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_title(method)
        ax.set_xlabel("training articles per topic (k)")
    axes[0].set_ylabel("test accuracy")
    axes[0].legend()
    fig.suptitle("k-shot BBC News, data.augment on/off", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--probability", type=float, default=0.1)
    parser.add_argument("--operations", nargs="+", default=list(OPERATIONS), choices=OPERATIONS)
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/augment_kshot.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(2)
    started = time.perf_counter()
    cpu_started = time.process_time()

    bbc = load_bundled("bundled:bbc-news")
    bbc["text"] = bbc["text"].map(normalize_text)
    pool, test = split(bbc, args.test_per_class)
    log(f"BBC: pool {len(pool)} articles, fixed test set {len(test)}")
    table_started = time.perf_counter()
    table = neighbour_table(resolve_model(MODEL), name=MODEL, k=5)
    table_seconds = time.perf_counter() - table_started
    embed = Embedder(args.max_length) if "head" in args.methods else None
    x_test = embed(test["text"].tolist()) if embed else None

    results: dict = {m: {str(k): {"plain": [], "augmented": []} for k in args.k} for m in args.methods}
    added_rows: dict[str, list[int]] = {str(k): [] for k in args.k}
    augment_seconds = 0.0
    for seed in range(args.seeds):
        for k in args.k:
            train = draw(pool, k, seed)
            t0 = time.perf_counter()
            added, _ = augment_frame(
                train, operations=args.operations, probability=args.probability, copies=args.copies, seed=seed, table=table
            )
            augment_seconds += time.perf_counter() - t0
            added_rows[str(k)].append(len(added))
            augmented = pd.concat([train, added], ignore_index=True)
            for method in args.methods:
                for arm, rows in (("plain", train), ("augmented", augmented)):
                    fit = fit_tfidf(rows, test) if method == "tfidf" else fit_head(rows, test, embed, x_test)
                    results[method][str(k)][arm].append(fit)
                plain, aug = results[method][str(k)]["plain"][-1], results[method][str(k)]["augmented"][-1]
                log(f"seed {seed} k={k:<4} {method:<6} accuracy {plain['accuracy']:.4f} -> {aug['accuracy']:.4f} (+{len(added)} rows)")

    table_out: dict = {}
    for method, by_k in results.items():
        table_out[method] = {}
        for k, arms in by_k.items():
            row = {arm: {m: summary([r[m] for r in runs]) for m in ("accuracy", "macro_f1")} for arm, runs in arms.items()}
            gains = [a["accuracy"] - p["accuracy"] for p, a in zip(arms["plain"], arms["augmented"])]
            row["accuracy_gain"] = {**summary(gains), "seeds_better": sum(g > 0 for g in gains), "seeds_worse": sum(g < 0 for g in gains)}
            table_out[method][k] = row

    print(f"\nk-shot BBC News topics, fixed test set of {len(test)} articles, {args.seeds} seed(s), mean ± std")
    print(f"data.augment: {', '.join(args.operations)}; {args.copies} copies; p={args.probability}; neighbours from {MODEL}")
    print(f"{'method':<7}{'k':>5}{'plain acc':>18}{'augmented acc':>18}{'gain':>18}{'better/worse':>14}{'plain F1':>18}{'augm. F1':>18}")
    for method, by_k in table_out.items():
        for k, row in by_k.items():

            def ms(s):
                return f"{s['mean']:.4f} ± {s['std']:.4f}"

            g = row["accuracy_gain"]
            print(
                f"{method:<7}{k:>5}{ms(row['plain']['accuracy']):>18}{ms(row['augmented']['accuracy']):>18}{g['mean']:>+11.4f} ± {g['std']:.4f}"
                f"{g['seeds_better']:>9}/{g['seeds_worse']}{ms(row['plain']['macro_f1']):>18}{ms(row['augmented']['macro_f1']):>18}"
            )
    wall = time.perf_counter() - started
    out = {
        "settings": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}, "model": MODEL},
        "pool_articles": len(pool),
        "test_articles": len(test),
        "rows_added_per_seed": added_rows,
        "results": table_out,
        "per_seed": results,
        "seconds": {
            "wall": round(wall, 1),
            "cpu": round(time.process_time() - cpu_started, 1),
            "neighbour_table": round(table_seconds, 1),
            "augment": round(augment_seconds, 2),
            "embedding": round(embed.seconds, 1) if embed else 0.0,
            "texts_embedded": len(embed.cache) if embed else 0,
        },
        "neighbour_vocabulary": len(table.words),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    plot(table_out, args.k, args.out.with_suffix(".png"))
    log(f"wrote {args.out} ({wall:.0f} s wall)")


if __name__ == "__main__":
    main()
