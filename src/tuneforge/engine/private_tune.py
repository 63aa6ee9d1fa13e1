"""Differentially private `full` and `lora` fine-tuning: DP-SGD through Opacus in a loop of its own.

Hugging Face Trainer clips and averages whole-batch gradients; DP-SGD needs every
example's gradient clipped before Gaussian noise is added, so this loop hands the
model, optimizer and a Poisson-sampled loader to `engine/private.py` (Opacus, RDP
accountant) and runs the planned `train.privacy.epochs` to the end: the accountant's
ε assumes every step, so there is no early stopping and no choice of checkpoint.
The model is built and saved by the same pieces as a regular fine-tune, so predict
and serve load it exactly like one. Under LoRA only the adapters and the head learn
and get per-example gradients; the frozen base weights get none.

There is no probe warm start and no probe floor (`train.warm_start`, `train.keep`):
the probe would learn from the training rows without noise, outside the budget.
"""

from __future__ import annotations

import inspect
import logging
import time
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from tuneforge.engine.callbacks import append_metrics
from tuneforge.engine.context import TrainContext
from tuneforge.engine.distributed import world_size
from tuneforge.engine.optim import adamw
from tuneforge.engine.private import default_delta, make_private, spent_details
from tuneforge.engine.transformer import load_for_fine_tuning, save_fine_tuned
from tuneforge.errors import ConfigError

logger = logging.getLogger(__name__)
LOGS_PER_EPOCH = 5


def _takes_position_ids(model) -> bool:
    """Whether the transformers model accepts `position_ids`: then each example gets its own row of them.

    BERT-style embeddings otherwise look their positions up with a batch of one, and Opacus cannot give the
    position table a gradient per example."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "position_ids" in inspect.signature(base.forward).parameters


def _with_positions(batch, positions: bool):
    if positions:
        import torch

        rows, length = batch["input_ids"].shape
        batch["position_ids"] = torch.arange(length).expand(rows, length)
    return batch


def _logits(model, dataset, collate, *, batch_size: int, positions: bool) -> np.ndarray:
    """The model's outputs over `dataset`, in order, without gradients (targets stay out of the forward pass)."""
    import torch

    was_training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(dataset), batch_size):
            batch = collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
            batch = _with_positions({k: v for k, v in batch.items() if k != "labels"}, positions)
            out.append(model(**batch).logits.float().numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def _step(model, optimizer, batch) -> float:
    """One DP-SGD step: per-example gradients, clipped, noised, applied; returns the batch loss."""
    optimizer.zero_grad(set_to_none=True)
    with warnings.catch_warnings():  # under LoRA no layer input needs a gradient; torch says so on every hook
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        loss = model(**batch).loss
        loss.backward()
    optimizer.step()
    return float(loss.detach())


def _check_scope(ctx: TrainContext) -> None:
    t = ctx.config.train
    if world_size() > 1:
        raise ConfigError(f"train.privacy: private method {t.method} trains in a single process; run it without torchrun / --nproc")
    if ctx.resume_from:
        logger.warning("train.privacy: a private run does not resume from checkpoints; training starts from the beginning")


def train_private_transformer(ctx: TrainContext, out_dir: Path) -> dict:
    import torch

    _check_scope(ctx)
    t, task, labels, privacy = ctx.config.train, ctx.task, ctx.labels, ctx.config.train.privacy
    torch.manual_seed(t.seed)
    tokenizer, model, _ = load_for_fine_tuning(ctx, probe=None)
    train_set = task.encode(tokenizer, ctx.frame("train"), labels, max_length=t.max_length)
    validation_set = task.encode(tokenizer, ctx.frame("validation"), labels, max_length=t.max_length)
    collate = task.collator(tokenizer)
    n = len(train_set)
    delta = privacy.delta if privacy.delta is not None else default_delta(n)
    batch = min(privacy.batch_size, n)
    loader = torch.utils.data.DataLoader(train_set, batch_size=batch, shuffle=True, collate_fn=collate)
    optimizer = adamw(model, body_lr=t.learning_rate, head_lr=t.head_learning_rate, weight_decay=t.weight_decay)
    where = f"method {t.method}"
    engine, private_model, optimizer, loader = make_private(model, optimizer, loader, privacy=privacy, delta=delta, n=n, where=where)
    positions = _takes_position_ids(model)
    log_every = max(1, len(loader) // LOGS_PER_EPOCH)
    step, losses, started = 0, [], time.perf_counter()
    val_targets = np.asarray(validation_set.columns["labels"])
    scores: dict = {}
    for epoch in range(1, privacy.epochs + 1):
        for batch_rows in loader:
            if not isinstance(batch_rows, Mapping) or len(batch_rows["input_ids"]) == 0:
                continue  # Poisson sampling can draw an empty batch; skipping it releases nothing
            try:
                loss = _step(private_model, optimizer, _with_positions(dict(batch_rows), positions))
            except RuntimeError as exc:
                if step:
                    raise
                raise ConfigError(
                    f"train.privacy: Opacus cannot compute per-example gradients of {type(model).__name__} for method "
                    f"{t.method} ({str(exc)[:200]}); use method lora or head"
                ) from exc
            step += 1
            losses.append(loss)
            if step % log_every == 0:
                spent = float(engine.get_epsilon(delta))
                record = {"step": step, "epoch": epoch, "loss": float(np.mean(losses[-log_every:])), "epsilon_spent": spent}
                append_metrics(ctx.run.metrics_file, record)
                logger.info(
                    "DP step %d (epoch %d/%d): loss %.4f, ε spent %.3f of %g",
                    step,
                    epoch,
                    privacy.epochs,
                    losses[-1],
                    spent,
                    privacy.epsilon,
                )
        logits = _logits(private_model._module, validation_set, collate, batch_size=t.eval_batch_size, positions=positions)
        scores = task.validation_scores(val_targets, logits)
        append_metrics(ctx.run.metrics_file, {"step": step, "epoch": epoch, **{f"eval_{k}": v for k, v in scores.items()}})
        logger.info("DP epoch %d/%d validation: %s", epoch, privacy.epochs, {k: round(v, 4) for k, v in scores.items()})
    seconds = time.perf_counter() - started
    details = spent_details(engine, optimizer, privacy=privacy, delta=delta, sample_rate=batch / n, where=where)
    optimizer.zero_grad(set_to_none=True)  # drops the per-example gradients
    private_model.remove_hooks()
    trained = private_model._module.eval()
    learned = task.finish_training(
        validation_logits=lambda: _logits(trained, validation_set, collate, batch_size=t.eval_batch_size, positions=positions),
        frame=ctx.frame("validation"),
        labels=labels,
        train=t,
    )
    save_fine_tuned(ctx, trained, tokenizer, out_dir, extra={**learned, "privacy": details})
    return {
        "global_step": step,
        "epochs_done": privacy.epochs,
        f"best_validation_{t.metric}": scores.get(t.metric),  # the final model: DP keeps no best checkpoint
        "train_loss": float(np.mean(losses)) if losses else None,
        "warm_start": "none",
        "kept": "fine-tuned",
        "kept_reason": "train.privacy: the final DP-SGD model (no probe warm start or floor: the probe would see the rows without noise)",
        "learning_rates": {"body": t.learning_rate, "head": t.head_learning_rate},
        "precision": "fp32",
        "train_seconds": round(seconds, 1),
        "privacy": details,
        **learned,
    }
