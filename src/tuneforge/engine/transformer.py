"""`full` and `lora` methods for every task: fine-tune a pretrained encoder with Hugging Face `Trainer`.

The task brings the head (auto class and size), the dataset encoding, the
collator and the validation scores; Trainer (on Accelerate) brings AdamW,
warmup + decay schedules, gradient accumulation, mixed precision and DDP. We add
the run folder, complete-only checkpoints, early stopping on our metric,
metrics.jsonl and the main-process gate.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np

from tuneforge.engine.args import run_training_arguments
from tuneforge.engine.callbacks import MetricsFileLogger
from tuneforge.engine.checkpoints import CompleteCheckpointMarker
from tuneforge.engine.context import TrainContext
from tuneforge.engine.distributed import is_main_process
from tuneforge.models.artifact import ModelMeta
from tuneforge.models.loading import load_pretrained, load_tokenizer

logger = logging.getLogger(__name__)


@functools.cache
def engine_trainer_class():
    from transformers import Trainer

    class EngineTrainer(Trainer):
        """Hugging Face Trainer as the engine runs it; distillation subclasses it for its loss."""

    return EngineTrainer


def make_trainer(*, model, tokenizer, args, train_dataset, collator, eval_dataset=None, compute_metrics=None, callbacks=(), trainer_class=None):
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
    )


def wrap_lora(model, lora, task_type: str):
    from peft import LoraConfig, TaskType, get_peft_model

    peft_config = LoraConfig(
        task_type=getattr(TaskType, task_type), r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=lora.target_modules
    )
    model = get_peft_model(model, peft_config)
    trainable, total = model.get_nb_trainable_parameters()
    logger.info("LoRA: training %d of %d parameters (%.2f%%)", trainable, total, 100 * trainable / total)
    return model


def _logits(prediction) -> np.ndarray:
    return np.asarray(prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions)


def train_transformer(ctx: TrainContext, out_dir: Path) -> dict:
    from transformers import EarlyStoppingCallback

    t, task, labels = ctx.config.train, ctx.task, ctx.labels
    name, remote = ctx.config.model.name, ctx.config.model.trust_remote_code
    tokenizer = load_tokenizer(ctx.model_path, name=name, remote=remote)
    model = load_pretrained(ctx.model_path, auto_model=task.auto_model, name=name, remote=remote, **task.model_kwargs(labels))
    if t.method == "lora":
        model = wrap_lora(model, t.lora, task.peft_task_type)

    train_set = task.encode(tokenizer, ctx.frame("train"), labels, max_length=t.max_length)
    validation_set = task.encode(tokenizer, ctx.frame("validation"), labels, max_length=t.max_length)
    callbacks = [MetricsFileLogger(ctx.run.metrics_file), CompleteCheckpointMarker(), *ctx.callbacks]
    if t.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=t.early_stopping_patience))
    trainer = make_trainer(
        model=model,
        tokenizer=tokenizer,
        args=run_training_arguments(t, ctx.run.checkpoints_dir, n_train=len(train_set)),
        train_dataset=train_set,
        eval_dataset=validation_set,
        collator=task.collator(tokenizer),
        compute_metrics=lambda p: task.validation_scores(p.label_ids, _logits(p)),
        callbacks=callbacks,
    )
    if ctx.resume_from:
        logger.info("resuming from %s", ctx.resume_from)
    result = trainer.train(resume_from_checkpoint=str(ctx.resume_from) if ctx.resume_from else None)
    learned = task.finish_training(
        validation_logits=lambda: _logits(trainer.predict(validation_set)), frame=ctx.frame("validation"), labels=labels, train=t
    )
    best = trainer.model
    if t.method == "lora":
        best = best.merge_and_unload()  # plain weights: predict and serve need no peft
    if is_main_process():
        best.save_pretrained(out_dir, safe_serialization=True)
        tokenizer.save_pretrained(out_dir)
        ModelMeta(kind="transformer", base_model=name, max_length=t.max_length, extra=learned, **ctx.meta_fields()).write(out_dir)
    return {
        "global_step": trainer.state.global_step,
        "epochs_done": trainer.state.epoch,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        f"best_validation_{t.metric}": trainer.state.best_metric,
        "train_loss": result.training_loss,
        **learned,
    }
