"""`full` and `lora` methods: fine-tune a pretrained encoder with Hugging Face `Trainer`.

Trainer (on Accelerate) brings AdamW, warmup + decay schedules, gradient
accumulation, mixed precision and multi-GPU; we add the run directory,
complete-only checkpoints, early stopping on our metric and metrics.jsonl.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from tuneforge.errors import ConfigError
from tuneforge.models.artifact import ModelMeta
from tuneforge.train.checkpoints import CompleteCheckpointMarker
from tuneforge.train.context import TrainContext, score
from tuneforge.train.logging_callback import MetricsFileLogger

logger = logging.getLogger(__name__)


class EncodedTexts(torch.utils.data.Dataset):
    def __init__(self, encodings: dict, labels: np.ndarray):
        self.encodings, self.labels = encodings, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        item = {k: v[i] for k, v in self.encodings.items()}
        item["labels"] = int(self.labels[i])
        return item


def load_classifier(ctx: TrainContext):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    labels = ctx.data.labels
    remote = ctx.config.model.trust_remote_code
    try:
        tokenizer = AutoTokenizer.from_pretrained(ctx.model_path, trust_remote_code=remote)
        model = AutoModelForSequenceClassification.from_pretrained(
            ctx.model_path,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
            use_safetensors=True,
            trust_remote_code=remote,
        )
    except OSError as exc:
        raise ConfigError(
            f"model.name={ctx.config.model.name!r}: could not load ({exc}); use a packaged alias such as 'minilm-l6' or a local folder with safetensors weights"
        ) from None
    return tokenizer, model


def wrap_lora(model, ctx: TrainContext):
    from peft import LoraConfig, TaskType, get_peft_model

    cfg = ctx.config.train.lora
    peft_config = LoraConfig(
        task_type=TaskType.SEQ_CLS, r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=cfg.target_modules
    )
    model = get_peft_model(model, peft_config)
    trainable, total = model.get_nb_trainable_parameters()
    logger.info("LoRA: training %d of %d parameters (%.2f%%)", trainable, total, 100 * trainable / total)
    return model


def training_arguments(ctx: TrainContext):
    from transformers import TrainingArguments

    t = ctx.config.train
    strategy = "steps" if t.checkpoint_every else "epoch"
    steps_per_epoch = max(1, len(ctx.data.train) // (t.batch_size * t.gradient_accumulation_steps))
    return TrainingArguments(
        output_dir=str(ctx.run_dir / "checkpoints"),
        num_train_epochs=t.epochs,
        learning_rate=t.learning_rate,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.eval_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        weight_decay=t.weight_decay,
        warmup_steps=t.warmup_ratio,  # a float in [0, 1) is a share of all steps
        lr_scheduler_type={"constant": "constant_with_warmup"}.get(t.scheduler, t.scheduler),
        label_smoothing_factor=t.label_smoothing,
        eval_strategy=strategy,
        save_strategy=strategy,
        eval_steps=t.checkpoint_every,
        save_steps=t.checkpoint_every or 500,
        save_total_limit=t.keep_checkpoints,
        load_best_model_at_end=True,
        metric_for_best_model=t.metric,
        greater_is_better=True,
        logging_steps=max(1, min(50, steps_per_epoch // 4)),
        seed=t.seed,
        data_seed=t.seed,
        report_to="none",
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
    )


def _compute_metrics(prediction) -> dict[str, float]:
    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    return score(prediction.label_ids, np.asarray(logits).argmax(axis=-1))


def train_transformer(ctx: TrainContext, out_dir: Path) -> dict:
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback, Trainer

    t = ctx.config.train
    tokenizer, model = load_classifier(ctx)
    if t.method == "lora":
        model = wrap_lora(model, ctx)

    def encode(split: str) -> EncodedTexts:
        return EncodedTexts(tokenizer(ctx.texts(split), truncation=True, max_length=t.max_length), ctx.label_ids(split))

    callbacks = [MetricsFileLogger(ctx.metrics_file), CompleteCheckpointMarker(), *ctx.callbacks]
    if t.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=t.early_stopping_patience))
    trainer = Trainer(
        model=model,
        args=training_arguments(ctx),
        train_dataset=encode("train"),
        eval_dataset=encode("validation"),
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        compute_metrics=_compute_metrics,
        callbacks=callbacks,
    )
    if ctx.resume_from:
        logger.info("resuming from %s", ctx.resume_from)
    result = trainer.train(resume_from_checkpoint=str(ctx.resume_from) if ctx.resume_from else None)
    best = trainer.model
    if t.method == "lora":
        best = best.merge_and_unload()  # plain weights: predict and serve need no peft
    best.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    ModelMeta(
        kind="transformer",
        labels=ctx.data.labels,
        method=t.method,
        base_model=ctx.config.model.name,
        max_length=t.max_length,
        strip_html=ctx.config.data.strip_html,
    ).write(out_dir)
    return {
        "global_step": trainer.state.global_step,
        "epochs_done": trainer.state.epoch,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        f"best_validation_{t.metric}": trainer.state.best_metric,
        "train_loss": result.training_loss,
    }
