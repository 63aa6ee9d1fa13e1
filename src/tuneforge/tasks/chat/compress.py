"""`tuneforge compress` for a chat run: faster generators, measured side by side on the run's held-out queries.

A chat variant is a recipe, not a copy: `compress/<variant>/tuneforge.json` is the
original's metadata plus the recipe (`quantize`) and where the files are (`files_in`),
and `ChatBot.load` applies it in about a second. Each variant answers the same held-out
in-scope queries as the original, every one by the generator from the retrieved passages
(FAQ shortcut and handoff off: those answers do not depend on the generator); `tradeoffs.json` has tokens/s, time to first token, answer F1,
groundedness and the share of answers identical to the original's. The recommendation is
the fastest variant whose answer F1 is within `accuracy_budget` points of the original.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from tuneforge.atomic import atomic_dir, atomic_write_json
from tuneforge.errors import ConfigError, RunError
from tuneforge.models.artifact import ModelMeta
from tuneforge.models.causal_speed import RECIPES
from tuneforge.plots import pyplot, save_figure
from tuneforge.rundir import RunDir

logger = logging.getLogger(__name__)


def compress_chat(run: RunDir, methods: list[str] | None, settings) -> dict:
    """Write the variants named in `methods` (from `RECIPES`; None: all), measure them and the original, recommend one."""
    from tuneforge.tasks.chat.evaluation import answer_records, summarize
    from tuneforge.tasks.chat.metrics import paired_difference
    from tuneforge.tasks.chat.runtime import ChatBot

    methods = list(RECIPES) if methods is None else methods
    unknown = [m for m in methods if m not in RECIPES]
    if unknown or not methods:
        raise ConfigError(f"--methods: a chat run's generator is compressed with {', '.join(RECIPES)}; got {', '.join(methods) or 'none'}")
    model_dir = run.model_for("original")
    meta = ModelMeta.read(model_dir)
    if meta.extra.get("generator") in (None, "none"):
        raise RunError(f"{run.path}: this bot has no generator (FAQ answers only), so there is nothing to compress")
    split, frame = run.evaluation_split()
    frame = frame[frame["label"].map(lambda v: isinstance(v, str) and bool(v.strip()))]  # in scope, with a reference answer
    if settings.chat_queries:
        frame = frame.head(settings.chat_queries)
    if frame.empty:
        raise RunError(f"{run.path}: the {split} queries have no reference answers to score the generator variants on")
    for recipe in methods:
        with atomic_dir(run.variant_dir(recipe)) as tmp:
            extra = {**meta.extra, "variant": recipe, "quantize": recipe, "files_in": "../../model"}
            replace(meta, extra=extra).write(tmp)
    rows, answers, f1s = [], {}, {}
    for variant in ["original", *methods]:
        # every query goes to the generator (no FAQ shortcut, no handoff): that is what the variants change
        bot = ChatBot.load(run.path, variant=variant).with_policy(use_faq=False, handoff_threshold=-1.0)
        records = answer_records(bot, frame, progress=f"{variant}: answering {len(frame)} {split} queries")
        answers[variant] = [r["answer"] for r in records]
        f1s[variant] = [r["token_f1"] for r in records]
        metrics = summarize(records)
        rows.append(
            {
                "variant": variant,
                "tokens_per_s": metrics["tokens_per_s"],
                "ttft_mean_s": metrics["ttft_mean_s"],
                "latency_mean_s": metrics["latency_mean_s"],
                "token_f1": metrics["token_f1"],
                "rouge_l": metrics["rouge_l"],
                "groundedness": metrics["groundedness"],
                "same_answer": round(float(np.mean([a == b for a, b in zip(answers[variant], answers["original"])])), 4),
                "generated": metrics["modes"]["generated"],
                "token_f1_vs_original": paired_difference(f1s[variant], f1s["original"]),
            }
        )
        logger.info("%s: %s tokens/s, answer F1 %s", variant, rows[-1]["tokens_per_s"], rows[-1]["token_f1"])
        del bot
    report = {
        "task": "chat",
        "split": split,
        "split_rows": len(frame),
        "accuracy_budget_points": settings.accuracy_budget,
        "variants": rows,
        "recommended": recommend(rows, settings.accuracy_budget),
    }
    atomic_write_json(run.tradeoffs_file, report)
    plot(rows, report["recommended"], run.tradeoffs_plot)
    return report


def recommend(rows: list[dict], budget_points: float) -> str:
    """The fastest variant whose answer F1 is within `budget_points` of the original's (the original when none is)."""
    base = next(r for r in rows if r["variant"] == "original")
    if base["token_f1"] is None or base["tokens_per_s"] is None:
        return "original"  # nothing generated or nothing to score against: no evidence a variant is as good
    allowed = [r for r in rows if r["token_f1"] is not None and r["token_f1"] >= base["token_f1"] - budget_points / 100 - 1e-12]
    return max(allowed, key=lambda r: r["tokens_per_s"] or 0.0)["variant"]


def plot(rows: list[dict], recommended: str, path):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for row in rows:
        if row["tokens_per_s"] is None or row["token_f1"] is None:
            continue
        ax.scatter(row["tokens_per_s"], row["token_f1"], s=60, marker="*" if row["variant"] == recommended else "o")
        ax.annotate(row["variant"], (row["tokens_per_s"], row["token_f1"]), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set_xlabel("generated tokens/s (batch 1)")
    ax.set_ylabel("answer token F1")
    ax.set_title(f"Generator speed / answer quality (recommended: {recommended})")
    ax.margins(x=0.3, y=0.3)
    return save_figure(fig, plt, path)
