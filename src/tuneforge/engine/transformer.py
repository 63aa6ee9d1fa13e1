"""`full` and `lora` methods for every task: fine-tune a pretrained encoder with Hugging Face `Trainer`.

The task brings the head (auto class and size), the dataset encoding, the
collator and the validation scores; Trainer (on Accelerate) brings AdamW,
warmup + decay schedules, gradient accumulation, mixed precision and DDP. We add
the run folder, complete-only checkpoints, early stopping on our metric,
metrics.jsonl and the main-process gate, and three guards against a fine-tune
that ends below its own frozen-encoder baseline (docs/tasks.md):

- warm start (LP-FT): the head starts as the probe's solution, with the same mean pooling;
- per-group learning rates: the head learns at `train.head_learning_rate`;
- the floor (engine/floor.py): with `train.keep: best`, a fine-tune that ends below the probe or the TF-IDF
  baseline on validation keeps that baseline.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np

from tuneforge.engine.args import run_training_arguments
from tuneforge.engine.callbacks import MetricsFileLogger, injected_faults
from tuneforge.engine.checkpoints import CompleteCheckpointMarker
from tuneforge.engine.compiling import StepTimer, named_compile_failures
from tuneforge.engine.context import TrainContext
from tuneforge.engine.distributed import backend, is_main_process, plan_batches, sum_over_ranks, world_size
from tuneforge.engine.floor import fit_floors, floor_to_keep, kept_anyway_note, kept_reason
from tuneforge.engine.optim import adamw
from tuneforge.engine.probe import Probe, fit_probe
from tuneforge.engine.throughput import TokenCounter, training_seconds
from tuneforge.models.artifact import ModelMeta
from tuneforge.models.loading import load_pretrained, load_tokenizer
from tuneforge.models.lora import wrap_lora
from tuneforge.models.pooling import MEAN, use_mean_pooling

logger = logging.getLogger(__name__)


@functools.cache
def engine_trainer_class():
    from transformers import Trainer

    class EngineTrainer(Trainer):
        """Hugging Face Trainer as the engine runs it; distillation subclasses it for its loss.

        Training batches go through a `TokenCounter` (texts, tokens, padding); evaluation batches do not."""

        token_counter: TokenCounter | None = None

        def get_train_dataloader(self):
            plain = self.data_collator
            self.token_counter = TokenCounter(plain)
            self.data_collator = self.token_counter
            try:
                return super().get_train_dataloader()
            finally:
                self.data_collator = plain

    return EngineTrainer


def make_trainer(
    *,
    model,
    tokenizer,
    args,
    train_dataset,
    collator,
    eval_dataset=None,
    compute_metrics=None,
    callbacks=(),
    trainer_class=None,
    optimizer=None,
):
    """The engine's Trainer: one construction for run training and for distillation."""
    trainer_class = trainer_class or engine_trainer_class()
    return trainer_class(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=collator,
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        callbacks=list(callbacks),
        optimizers=(optimizer, None),
    )


def _logits(prediction) -> np.ndarray:
    return np.asarray(prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions)


def _warm_start(model, probe: Probe, *, logit_std: float | None) -> float | None:
    """Load the probe into the classifier; needs a BERT-style encoder (mean pooling) and a linear head of its shape.

    A probe fitted to convergence is very sure of its training examples: its loss is near zero, and so are the
    gradients that should adapt the encoder (the head norm grows in linear probing, Tomihari & Sato 2024). The
    head is therefore scaled so its training logits spread by `logit_std`; a positive scale changes no argmax,
    so the run still starts at the probe's validation score.
    """
    import torch

    head = getattr(model, "classifier", None) or getattr(model, "score", None)
    scale = min(1.0, logit_std / probe.train_logit_std) if logit_std and probe.train_logit_std > 0 else 1.0
    weight, bias = torch.from_numpy(probe.fit.weight * scale), torch.from_numpy(probe.fit.bias * scale)
    if not isinstance(head, torch.nn.Linear) or head.weight.shape != weight.shape or not use_mean_pooling(model):
        logger.warning("warm start skipped: %s has no BERT-style pooler and linear head of the probe's shape", type(model).__name__)
        return None
    with torch.no_grad():
        head.weight.copy_(weight)
        head.bias.copy_(bias)
    logger.info("warm start from the probe: training logits spread %.2f, head scaled by %.3f", probe.train_logit_std, scale)
    return scale


def stop_summary(state, train, metric: str) -> dict:
    """When training stopped, why, and which epoch's checkpoint is the model."""
    evaluations = [(e["epoch"], e[f"eval_{metric}"]) for e in state.log_history if f"eval_{metric}" in e and e.get("epoch")]
    best_epoch = next((epoch for epoch, value in evaluations if value == state.best_metric), None)
    done, planned = float(state.epoch or 0), train.planned_epochs
    if done < planned - 1e-6:
        reason = f"early stopping: validation {metric} did not improve for {train.early_stopping_patience} evaluations"
    else:
        reason = "reached train.epochs" if train.epochs is not None else "reached train.max_epochs while still improving"
    return {"stopped_epoch": round(done, 2), "planned_epochs": planned, "best_epoch": best_epoch, "stop_reason": reason}


def _distributed_summary(plan) -> dict:
    import os

    return {
        "world_size": plan.world_size,
        "nodes": plan.world_size // int(os.environ.get("LOCAL_WORLD_SIZE", plan.world_size)),
        "backend": backend(),
        "per_device_batch": plan.per_device,
        "gradient_accumulation_steps": plan.accumulation,
        "global_batch": plan.global_batch,
    }


def load_for_fine_tuning(ctx: TrainContext, probe: Probe | None):
    """Tokenizer and the task's model, its head warm-started from `probe` (if any), wrapped in LoRA for `lora`.

    Returns (tokenizer, model, warm-start scale or None)."""
    t, task = ctx.config.train, ctx.task
    name, remote = ctx.config.model.name, ctx.config.model.trust_remote_code
    tokenizer = load_tokenizer(ctx.model_path, name=name, remote=remote)
    model = load_pretrained(ctx.model_path, auto_model=task.auto_model, name=name, remote=remote, **task.model_kwargs(ctx.labels))
    scale = (
        _warm_start(model, probe, logit_std=t.warm_start_logit_std)
        if probe and t.warm_start == "probe" and t.head.pooling == MEAN
        else None
    )
    if t.method == "lora":
        model = wrap_lora(model, t.lora, task.peft_task_type)
    return tokenizer, model, scale


def save_fine_tuned(ctx: TrainContext, model, tokenizer, out_dir: Path, *, extra: dict) -> None:
    """The model folder predict and serve load: plain weights (LoRA merged: no peft needed), tokenizer, meta."""
    t = ctx.config.train
    if t.method == "lora":
        model = model.merge_and_unload()
    if is_main_process():
        model.save_pretrained(out_dir, safe_serialization=True)
        tokenizer.save_pretrained(out_dir)
        ModelMeta(kind="transformer", base_model=ctx.config.model.name, max_length=t.max_length, extra=extra, **ctx.meta_fields()).write(
            out_dir
        )


def train_transformer(ctx: TrainContext, out_dir: Path) -> dict:
    from transformers import EarlyStoppingCallback

    t, task, labels = ctx.config.train, ctx.task, ctx.labels
    probe = fit_probe(ctx) if "probe" in t.baselines_fitted(task.methods) else None
    floors = fit_floors(ctx, probe)
    tokenizer, model, scale = load_for_fine_tuning(ctx, probe)
    warm = scale is not None

    train_set = task.encode(tokenizer, ctx.frame("train"), labels, max_length=t.max_length)
    validation_set = task.encode(tokenizer, ctx.frame("validation"), labels, max_length=t.max_length)
    timer = StepTimer()
    callbacks = [MetricsFileLogger(ctx.run.metrics_file), CompleteCheckpointMarker(), timer, *ctx.callbacks, *injected_faults()]
    plan = plan_batches(t.batch_size, t.gradient_accumulation_steps, world_size())
    if t.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=t.early_stopping_patience))
    trainer = make_trainer(
        model=model,
        tokenizer=tokenizer,
        args=run_training_arguments(t, ctx.run.checkpoints_dir, n_train=len(train_set), evaluate_first=warm, plan=plan),
        train_dataset=train_set,
        eval_dataset=validation_set,
        collator=task.collator(tokenizer),
        compute_metrics=lambda p: task.validation_scores(p.label_ids, _logits(p)),
        callbacks=callbacks,
        optimizer=adamw(model, body_lr=t.learning_rate, head_lr=t.head_learning_rate, weight_decay=t.weight_decay),
    )
    if ctx.resume_from:
        logger.info("resuming from %s", ctx.resume_from)
    with named_compile_failures(t.compile):
        result = trainer.train(resume_from_checkpoint=str(ctx.resume_from) if ctx.resume_from else None)
    info = {
        "global_step": trainer.state.global_step,
        "epochs_done": trainer.state.epoch,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        f"best_validation_{t.metric}": trainer.state.best_metric,
        "train_loss": result.training_loss,
        "warm_start": "probe" if warm else "none",
        "warm_start_scale": scale,
        "learning_rates": {"body": t.learning_rate, "head": t.head_learning_rate},
        "precision": "bf16" if trainer.args.bf16 else ("fp16" if trainer.args.fp16 else "fp32"),
        "device": str(trainer.args.device),
        "compile": bool(trainer.args.torch_compile),
        "pin_memory": bool(trainer.args.dataloader_pin_memory),
        **stop_summary(trainer.state, t, t.metric),
    }
    if plan.world_size > 1:
        info["distributed"] = _distributed_summary(plan)
    if trainer.token_counter is not None:
        counter = trainer.token_counter  # each rank counted its own batches
        counter.texts, counter.tokens, counter.positions = map(int, sum_over_ranks([counter.texts, counter.tokens, counter.positions]))
        info["throughput"] = (
            trainer.token_counter.summary(training_seconds(result.metrics.get("train_runtime", 0.0), trainer.state.log_history))
            | timer.summary()
        )
    for floor in floors:
        info[f"{floor.name}_validation_{t.metric}"] = floor.score
    kept = floor_to_keep(floors, trainer.state.best_metric, t)
    if kept is not None:
        info["kept"], info["kept_reason"] = kept.name, kept_reason(kept, trainer.state.best_metric, t.metric)
        logger.warning("%s", info["kept_reason"])
        return {**info, **(kept.save(out_dir) if is_main_process() else {})}
    info["kept"] = "fine-tuned"
    note = kept_anyway_note(floors, trainer.state.best_metric, t, t.metric)
    if note:
        info["kept_note"] = note
    learned = task.finish_training(
        validation_logits=lambda: _logits(trainer.predict(validation_set)), frame=ctx.frame("validation"), labels=labels, train=t
    )
    save_fine_tuned(ctx, trainer.model, tokenizer, out_dir, extra={**learned, **({"pooling": MEAN} if warm else {})})
    return {**info, **learned}
