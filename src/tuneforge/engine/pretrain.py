"""The engine's language-model loop (task lm): masked-LM or causal-LM pre-training with Hugging Face `Trainer`.

Same run folder, checkpoints (complete-only), resume, metrics.jsonl, tracking and
main-process gate as fine-tuning; what differs is the data (packed blocks, no
labels), the validation score (held-out loss: the best checkpoint is the one with
the lowest) and what is saved:

- masked LM: the whole `...ForMaskedLM` model, so `AutoModel` and
  `AutoModelForSequenceClassification` load its encoder (`train` with
  `model.name: RUN_DIR`). An encoder without a masked-LM head (the packaged
  MiniLM is a sentence encoder) gets a new, randomly initialised head, which is
  logged, recorded in the model card and learns at `train.head_learning_rate`.
  The encoder's pooler, which masked-LM models leave out, is saved with it.
- causal LM: the full model (`full`), or the LoRA adapter with the base model's
  name (`lora`), which `models.causal.load_causal_lm` loads over that base.

Held-out loss and perplexity are measured on the run's test split (validation
without one) before training, with the base model; `evaluate` measures them again.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from transformers import TrainerCallback

from tuneforge.engine.args import training_arguments
from tuneforge.engine.callbacks import MetricsFileLogger
from tuneforge.engine.checkpoints import CompleteCheckpointMarker
from tuneforge.engine.context import TrainContext
from tuneforge.engine.distributed import is_main_process
from tuneforge.engine.optim import adamw
from tuneforge.engine.throughput import training_seconds
from tuneforge.engine.transformer import engine_trainer_class, make_trainer
from tuneforge.errors import DataError
from tuneforge.models.artifact import ModelMeta
from tuneforge.models.lora import wrap_lora
from tuneforge.tasks.base import EncodedDataset
from tuneforge.tasks.lm.blocks import IGNORE, BlockSettings, LanguageModelCollator, as_columns, held_out_examples, make_blocks
from tuneforge.tasks.lm.perplexity import held_out_loss, scoring_batch_size
from tuneforge.tasks.lm.task import KINDS

logger = logging.getLogger(__name__)

# train.* settings passed to the Trainer as they are (the metric is the held-out loss, not train.metric)
FROM_TRAIN = (
    "learning_rate", "batch_size", "seed", "gradient_accumulation_steps",
    "weight_decay", "warmup_ratio", "scheduler", "checkpoint_every", "keep_checkpoints",
)  # fmt: skip


MASKED_LM_HEADS = ("cls", "lm_head")  # BERT-style and RoBERTa-style masked-LM heads; both map (tokens, hidden) -> vocabulary


@functools.cache
def masked_lm_trainer_class():
    """The engine's Trainer, training a masked LM on the masked positions only.

    A masked LM's head maps every position to the whole vocabulary; on a small encoder
    (MiniLM: 30,522 words x 384) that is more compute than the encoder itself, and 85 %
    of it is thrown away. The training loss is the same cross-entropy over the masked
    positions, so the head runs on those alone (about twice as fast on MiniLM). Other
    heads, and models wrapped for distributed training, take the model's own forward."""
    import torch

    class MaskedLMTrainer(engine_trainer_class()):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            head = next((getattr(model, name) for name in MASKED_LM_HEADS if hasattr(model, name)), None)
            if return_outputs or head is None or self.accelerator.unwrap_model(model) is not model:
                return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
            labels = inputs["labels"]
            hidden = model.base_model(**{k: v for k, v in inputs.items() if k != "labels"})[0]
            picked = labels != IGNORE
            loss = torch.nn.functional.cross_entropy(head(hidden[picked]).float(), labels[picked], reduction="sum")
            count = num_items_in_batch if num_items_in_batch is not None else picked.sum().clamp(min=1)
            return loss / count

    return MaskedLMTrainer


class MaskingEpoch(TrainerCallback):
    """Tells the collator which epoch it masks for (each epoch masks every block afresh, reproducibly)."""

    def __init__(self, collator: LanguageModelCollator):
        self.collator = collator

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.collator.epoch = int(state.epoch or 0)
        return control


def load_masked_lm(ctx: TrainContext):
    """(model, tokenizer, names of newly initialised head parameters) for masked-LM pre-training."""
    from transformers import AutoModelForMaskedLM

    from tuneforge.models.loading import load_tokenizer

    name, remote = ctx.config.model.name, ctx.config.model.trust_remote_code
    tokenizer = load_tokenizer(ctx.model_path, name=name, remote=remote)
    if tokenizer.mask_token is None:
        raise DataError(
            f"model.name={name!r}: its tokenizer has no mask token, so it cannot be pre-trained as a masked LM; use objective clm"
        )
    model, info = AutoModelForMaskedLM.from_pretrained(
        ctx.model_path, use_safetensors=True, trust_remote_code=remote, output_loading_info=True
    )
    prefix = model.base_model_prefix
    new = sorted(k for k in info["missing_keys"] if not k.startswith(f"{prefix}."))
    if new:
        logger.warning(
            "%s has no masked-LM head: a new one (%s) is initialised at random on top of the pretrained encoder and learns "
            "from scratch at train.head_learning_rate; the encoder weights are the pretrained ones",
            name,
            type(model).__name__,
        )
    return model, tokenizer, new


def load_causal(ctx: TrainContext):
    """(model, tokenizer, whether the starting point was itself an adapter, its merged weights now)."""
    from tuneforge.models.causal import load_causal_lm, resolve_causal_lm

    name = ctx.config.model.name
    model, tokenizer = load_causal_lm(name, remote=ctx.config.model.trust_remote_code)
    return model, tokenizer, resolve_causal_lm(name).adapter is not None


def adapter_base_name(name: str) -> str:
    """How a saved adapter names its base model: an alias or hub id as given, a local folder as an absolute path."""
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


def _figure(value: float) -> float:
    """Three significant digits: 0.0024 epochs of a short run stay readable, 12.3 of a long one too."""
    return float(f"{float(value):.3g}")


def _stop_summary(state, ctx: TrainContext) -> dict:
    t, p = ctx.config.train, ctx.config.pretrain
    evaluations = [(e.get("epoch"), e["eval_loss"]) for e in state.log_history if "eval_loss" in e]
    best_epoch = next((_figure(epoch) for epoch, value in evaluations if value == state.best_metric and epoch is not None), None)
    if state.global_step < state.max_steps:
        reason = f"early stopping: validation loss did not improve for {t.early_stopping_patience} evaluations"
    elif p.max_steps:
        reason = f"reached pretrain.max_steps ({p.max_steps})"
    else:
        reason = "reached train.epochs" if t.epochs is not None else "reached train.max_epochs while still improving"
    return {
        "stopped_epoch": _figure(state.epoch or 0),
        # epochs the schedule was built for (pretrain.max_steps may end inside the first one)
        "planned_epochs": _figure((state.epoch or 0) * state.max_steps / state.global_step) if state.global_step else None,
        "best_epoch": best_epoch,
        "stop_reason": reason,
    }


def train_language_model(ctx: TrainContext, out_dir: Path) -> dict:
    config, t = ctx.config, ctx.config.train
    settings = BlockSettings.from_config(config.pretrain)
    mlm = settings.objective == "mlm"
    if mlm:
        model, tokenizer, new_head = load_masked_lm(ctx)
        from_adapter = False
    else:
        model, tokenizer, from_adapter = load_causal(ctx)
        new_head = []
    eval_batch = scoring_batch_size(settings, t.eval_batch_size)
    before = _measure_before(ctx, model, tokenizer, settings, batch_size=eval_batch)
    if t.method == "lora":
        model = wrap_lora(model, t.lora, "CAUSAL_LM")
    trainer = _trainer(ctx, model, tokenizer, settings, new_head=set(new_head), eval_batch=eval_batch)
    if ctx.resume_from:
        logger.info("resuming from %s", ctx.resume_from)
    result = trainer.train(resume_from_checkpoint=str(ctx.resume_from) if ctx.resume_from else None)
    adapter = t.method == "lora" and not from_adapter
    info = _train_info(trainer, result, ctx, settings, before=before, adapter=adapter)
    if mlm:
        info["mlm_head"] = "new: initialised at random (the base model had none) and trained here" if new_head else "the base model's own"
    if is_main_process():
        _save(trainer.model, tokenizer, out_dir, ctx=ctx, mlm=mlm, adapter=adapter)
        extra = {"objective": settings.objective, "settings": settings.to_dict(), "held_out_before": before, "adapter": adapter}
        if mlm:
            extra["mlm_head"] = info["mlm_head"]
        ModelMeta(
            kind=KINDS[settings.objective], base_model=config.model.name, max_length=settings.block_size, extra=extra, **ctx.meta_fields()
        ).write(out_dir)
    return info


def _measure_before(ctx: TrainContext, model, tokenizer, settings: BlockSettings, *, batch_size: int) -> dict:
    """The base model's loss and perplexity on the split `evaluate` scores afterwards (test, else validation)."""
    split = "test" if ctx.data.test is not None else "validation"
    before = held_out_loss(model, tokenizer, ctx.texts(split), settings, batch_size=batch_size, progress="held-out loss (before)")
    logger.info(
        "held-out %s before training: loss %.4f, perplexity %.2f (%d scored tokens)",
        split,
        before["loss"],
        before["perplexity"],
        before["tokens"],
    )
    return {**before, "split": split}


def _trainer(ctx: TrainContext, model, tokenizer, settings: BlockSettings, *, new_head: set[str], eval_batch: int):
    """The engine's Trainer over packed training blocks and fixed-mask validation blocks; best checkpoint = lowest loss."""
    from transformers import EarlyStoppingCallback

    config, t = ctx.config, ctx.config.train
    blocks = make_blocks(tokenizer, ctx.texts("train"), settings)
    if not blocks:
        raise DataError(f"{config.data.train}: the training documents hold no tokens")
    train_set = EncodedDataset(as_columns(blocks)).with_column("index", list(range(len(blocks))))
    validation_set = EncodedDataset(as_columns(held_out_examples(tokenizer, ctx.texts("validation"), settings)))
    logger.info("training on %d blocks of up to %d tokens; validating on %d", len(train_set), settings.block_size, len(validation_set))
    args = training_arguments(
        ctx.run.checkpoints_dir,
        n_train=len(train_set),
        epochs=t.planned_epochs,
        max_steps=config.pretrain.max_steps or -1,
        metric_for_best_model="loss",
        greater_is_better=False,
        load_best_model_at_end=True,
        remove_unused_columns=False,  # whole-word masking needs the offsets the model itself does not take
        eval_batch_size=eval_batch,
        **{name: getattr(t, name) for name in FROM_TRAIN},
    )
    collator = LanguageModelCollator(tokenizer, settings, seed=t.seed)
    callbacks = [MetricsFileLogger(ctx.run.metrics_file), CompleteCheckpointMarker(), MaskingEpoch(collator), *ctx.callbacks]
    if t.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=t.early_stopping_patience))
    optimizer = adamw(
        model,
        body_lr=t.learning_rate,
        head_lr=t.head_learning_rate if new_head else t.learning_rate,
        weight_decay=t.weight_decay,
        is_head=lambda name: name in new_head,
    )
    return make_trainer(
        model=model,
        tokenizer=tokenizer,
        args=args,
        train_dataset=train_set,
        eval_dataset=validation_set,
        collator=collator,
        callbacks=callbacks,
        optimizer=optimizer,
        trainer_class=masked_lm_trainer_class() if settings.objective == "mlm" else None,
    )


def _train_info(trainer, result, ctx: TrainContext, settings: BlockSettings, *, before: dict, adapter: bool) -> dict:
    import math

    best_loss = trainer.state.best_metric
    info = {
        "objective": settings.objective,
        "global_step": trainer.state.global_step,
        "epochs_done": trainer.state.epoch,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "best_validation_loss": best_loss,
        "best_validation_perplexity": round(math.exp(best_loss), 4) if best_loss is not None else None,
        "train_loss": result.training_loss,
        "blocks": {"train": len(trainer.train_dataset), "validation": len(trainer.eval_dataset), "block_size": settings.block_size},
        "held_out_before": before,
        "adapter": adapter,
        **_stop_summary(trainer.state, ctx),
    }
    if trainer.token_counter is not None:
        seconds = training_seconds(result.metrics.get("train_runtime", 0.0), trainer.state.log_history)
        info["throughput"] = trainer.token_counter.summary(seconds)
    return info


def _save(model, tokenizer, out_dir: Path, *, ctx: TrainContext, mlm: bool, adapter: bool) -> None:
    if adapter:  # a few MB instead of the whole model; its base is named so the loader can find it again
        model.peft_config["default"].base_model_name_or_path = adapter_base_name(ctx.config.model.name)
        # the adapters do not touch the embeddings: saying so spares peft a hub lookup of the base model's config
        model.save_pretrained(out_dir, safe_serialization=True, save_embedding_layers=False)
    else:
        if hasattr(model, "merge_and_unload"):  # LoRA over a base that was itself an adapter: save merged weights
            model = model.merge_and_unload()
        state = model.state_dict()
        if mlm:
            state.update(_encoder_pooler(ctx, model))
        model.save_pretrained(out_dir, state_dict=state, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)


def _encoder_pooler(ctx: TrainContext, mlm_model) -> dict:
    """The base encoder's pooler weights, which `...ForMaskedLM` leaves out but sentence-level heads use."""
    if getattr(mlm_model.base_model, "pooler", None) is not None:
        return {}
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(ctx.model_path, use_safetensors=True, trust_remote_code=ctx.config.model.trust_remote_code)
    pooler = getattr(encoder, "pooler", None)
    if pooler is None:
        return {}
    prefix = mlm_model.base_model_prefix
    return {f"{prefix}.pooler.{key}": value for key, value in pooler.state_dict().items()}
