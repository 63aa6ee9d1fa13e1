"""The frozen-encoder probe: pooled embeddings + the task's linear head, fitted on the run's splits.

It is the whole `head` method, and for `full` / `lora` it is two things more:
the warm start of the fine-tuned head (linear-probe-then-fine-tune, Kumar et
al., ICLR 2022: the run starts at the probe's validation score) and the floor
a fine-tuned model must beat to be kept (`train.keep: best`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from tuneforge.engine.callbacks import append_metrics
from tuneforge.engine.context import TrainContext
from tuneforge.errors import ConfigError
from tuneforge.models.artifact import ModelMeta
from tuneforge.models.encode import embed_texts
from tuneforge.models.loading import load_encoder, load_tokenizer
from tuneforge.tasks.base import LinearFit

logger = logging.getLogger(__name__)


@dataclass
class Probe:
    fit: LinearFit
    c: float | None  # the chosen regularisation (None for a private head: no grid)
    encoder: object
    tokenizer: object
    train_logit_std: float = 1.0  # spread of the probe's logits on the training split

    def score(self, metric: str) -> float:
        return self.fit.scores[metric]


def fit_best_linear(ctx: TrainContext, x_train, x_val, c_grid: list[float], *, baseline: str = "probe") -> tuple[LinearFit, float]:
    """Fit the task's linear head for every C; keep the best on validation by `train.metric`.

    Each fit is a metrics.jsonl line tagged with its `baseline` (probe | tfidf), apart from the fine-tune's evaluations."""
    t, task = ctx.config.train, ctx.task
    y_train = task.linear_targets(ctx.frame("train"), ctx.labels)
    y_val = task.linear_targets(ctx.frame("validation"), ctx.labels)
    best = None
    for c in c_grid:
        fit = task.fit_linear(x_train, y_train, x_val, y_val, labels=ctx.labels, c=c, seed=t.seed, train=t)
        line = {"step": 0, "baseline": baseline, **({"probe": True} if baseline == "probe" else {}), "C": c}
        append_metrics(ctx.run.metrics_file, {**line, **{f"eval_{k}": v for k, v in fit.scores.items()}})
        logger.info("%s C=%g validation: %s", baseline, c, {k: round(v, 4) for k, v in fit.scores.items()})
        if best is None or fit.scores[t.metric] > best[0].scores[t.metric]:
            best = (fit, c)
    return best


def fit_probe(ctx: TrainContext) -> Probe:
    t, name, remote = ctx.config.train, ctx.config.model.name, ctx.config.model.trust_remote_code
    tokenizer = load_tokenizer(ctx.model_path, name=name, remote=remote)
    encoder = load_encoder(ctx.model_path, name=name, remote=remote)

    def features(split: str) -> np.ndarray:
        return embed_texts(
            encoder,
            tokenizer,
            ctx.texts(split),
            max_length=t.max_length,
            batch_size=t.eval_batch_size,
            pooling=t.head.pooling,
            progress=f"embedding {split}",
        )

    x_train = features("train")
    if t.privacy is not None:
        return _private_probe(ctx, x_train, features("validation"), encoder, tokenizer)
    fit, c = fit_best_linear(ctx, x_train, features("validation"), t.head.c_grid)
    spread = float(np.std(np.asarray(x_train @ fit.weight.T) + fit.bias))
    return Probe(fit=fit, c=c, encoder=encoder, tokenizer=tokenizer, train_logit_std=spread)


def _private_probe(ctx: TrainContext, x_train, x_val, encoder, tokenizer) -> Probe:
    """The head trained with DP-SGD (`train.privacy`): no C grid (choosing by validation would spend privacy)."""
    from tuneforge.engine.private import fit_private_linear
    from tuneforge.tasks.classify.metrics import selection_scores

    t, task = ctx.config.train, ctx.task
    if task.name != "classify" or t.method != "head":
        raise ConfigError(
            f"train.privacy: differentially private training covers method head of task classify; got {t.method} / {task.name}"
        )
    fit, details = fit_private_linear(
        x_train,
        task.linear_targets(ctx.frame("train"), ctx.labels),
        x_val,
        task.linear_targets(ctx.frame("validation"), ctx.labels),
        n_labels=len(ctx.labels),
        privacy=t.privacy,
        seed=t.seed,
        scores=selection_scores,
    )
    fit.extra["privacy"] = details
    return Probe(fit=fit, c=None, encoder=encoder, tokenizer=tokenizer)


def save_probe(probe: Probe, ctx: TrainContext, out_dir: Path, *, extra: dict | None = None) -> None:
    """The probe as a `head` model folder: the frozen encoder, `head.safetensors` and its meta."""
    t = ctx.config.train
    probe.encoder.save_pretrained(out_dir, safe_serialization=True)
    probe.tokenizer.save_pretrained(out_dir)
    save_file({"weight": probe.fit.weight, "bias": probe.fit.bias}, str(out_dir / "head.safetensors"))
    extra = {"C": probe.c, **probe.fit.extra, **(extra or {})}
    ModelMeta(
        kind="head", base_model=ctx.config.model.name, max_length=t.max_length, pooling=t.head.pooling, extra=extra, **ctx.meta_fields()
    ).write(out_dir)
