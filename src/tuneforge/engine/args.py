"""The one place Hugging Face `TrainingArguments` are built, for run training and for distillation alike."""

from __future__ import annotations

from pathlib import Path

from tuneforge.devices import training_device, training_precision  # noqa: F401 - re-exported: engine.cost uses it


def training_arguments(
    output_dir: str | Path,
    *,
    n_train: int,
    epochs: float,
    learning_rate: float,
    batch_size: int,
    seed: int,
    eval_batch_size: int = 64,
    gradient_accumulation_steps: int = 1,
    weight_decay: float = 0.01,
    warmup_ratio: float = 0.1,
    scheduler: str = "linear",
    label_smoothing: float = 0.0,
    checkpoints: bool = True,
    checkpoint_every: int | None = None,
    keep_checkpoints: int = 2,
    metric: str | None = None,
    **extra,
):
    """`checkpoints=False` trains without evaluating or saving (distillation's scratch runs);
    otherwise it evaluates and saves every epoch, or every `checkpoint_every` steps, and
    keeps the best checkpoint by `metric`."""
    from transformers import TrainingArguments

    from tuneforge.engine.distributed import world_size

    device = training_device()
    steps_per_epoch = max(1, n_train // (batch_size * gradient_accumulation_steps * world_size()))
    strategy = ("steps" if checkpoint_every else "epoch") if checkpoints else "no"
    selection = (
        {"load_best_model_at_end": True, "metric_for_best_model": metric, "greater_is_better": True} if checkpoints and metric else {}
    )
    return TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=epochs,
        learning_rate=learning_rate,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=eval_batch_size,
        gradient_accumulation_steps=gradient_accumulation_steps,
        weight_decay=weight_decay,
        warmup_steps=warmup_ratio,  # a float in [0, 1) is a share of all steps
        lr_scheduler_type={"constant": "constant_with_warmup"}.get(scheduler, scheduler),
        label_smoothing_factor=label_smoothing,
        eval_strategy=strategy,
        save_strategy=strategy,
        eval_steps=checkpoint_every,
        save_steps=checkpoint_every or 500,
        save_total_limit=keep_checkpoints,
        logging_steps=max(1, min(50, steps_per_epoch // 4)),
        seed=seed,
        data_seed=seed,
        report_to="none",
        use_cpu=device == "cpu",  # otherwise the Trainer takes CUDA (one GPU per process) or MPS
        dataloader_num_workers=0,
        # page-locked batches only pay for copies to a CUDA GPU (the 5.x default is on for MPS too, where torch ignores it)
        dataloader_pin_memory=device == "cuda",
        # True (the 5.x default) multiplies the loss by the number of processes for models whose loss ignores the
        # token count (sequence classification): losses read 2x on 2 processes and gradients double
        average_tokens_across_devices=False,
        **selection,
        **extra,
    )


# train.* settings that map one to one onto `training_arguments` keywords
FROM_TRAIN_CONFIG = (
    "learning_rate", "batch_size", "seed", "eval_batch_size", "gradient_accumulation_steps",
    "weight_decay", "warmup_ratio", "scheduler", "label_smoothing", "checkpoint_every", "keep_checkpoints", "metric",
)  # fmt: skip


def run_training_arguments(train, output_dir: str | Path, *, n_train: int, evaluate_first: bool = False, plan=None):
    """Arguments of a run from its `train` config section; `evaluate_first` scores the starting point too (step 0).

    `plan` (a `BatchPlan`) replaces the config's batch size and accumulation under several processes, so that
    one optimiser step still sees `train.batch_size x train.gradient_accumulation_steps` examples."""
    settings = {name: getattr(train, name) for name in FROM_TRAIN_CONFIG}
    precision = training_precision(train.precision)
    settings.update(bf16=precision == "bf16", fp16=precision == "fp16", torch_compile=train.compile)
    if plan is not None:
        settings.update(batch_size=plan.per_device, gradient_accumulation_steps=plan.accumulation)
    return training_arguments(
        output_dir,
        n_train=n_train,
        epochs=train.planned_epochs,
        eval_on_start=evaluate_first,
        train_sampling_strategy="group_by_length" if train.group_by_length else "random",
        **settings,
    )
