"""`lstm` method: embeddings + BiLSTM learnt from scratch on the run's data, with plain torch on CPU.

The classic neural baseline beside `tfidf`: what a model that learns its own
word vectors reaches without any pretraining. Batches are built from texts of
similar length (sorted into buckets, buckets shuffled) so little of the work is
padding; every epoch is scored on validation and the best epoch's weights are
the model (early stopping after `train.early_stopping_patience` epochs without
improvement). Seeded: the same config trains the same weights.
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from tuneforge.engine.callbacks import append_metrics
from tuneforge.engine.context import TrainContext
from tuneforge.models.artifact import ModelMeta
from tuneforge.models.lstm import BiLstmClassifier, LstmSpec, WordTokenizer, lstm_logits, pad_batch, save_lstm
from tuneforge.plan.batches import length_batches

logger = logging.getLogger(__name__)
CLIP_NORM = 1.0  # recurrent nets without clipping occasionally blow up on long texts


def _loss_function(ctx: TrainContext, targets: np.ndarray):
    """Cross-entropy for one label per text; per-label binary cross-entropy when the task is multi-label (as HF does)."""
    t = ctx.config.train
    if ctx.task.model_kwargs(ctx.labels).get("problem_type") == "multi_label_classification":
        return torch.nn.BCEWithLogitsLoss(), torch.float32
    weight = None
    if t.class_weight == "balanced":
        counts = np.bincount(targets, minlength=len(ctx.labels)).astype(np.float64)
        weight = torch.tensor(len(targets) / (len(ctx.labels) * np.maximum(counts, 1)), dtype=torch.float32)
    return torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=t.label_smoothing), torch.long


def _stop_reason(t, stopped_early: bool) -> str:
    if stopped_early:
        return f"early stopping: validation {t.metric} did not improve for {t.early_stopping_patience} epochs"
    return "reached train.epochs" if t.epochs is not None else "reached train.max_epochs while still improving"


def train_lstm(ctx: TrainContext, out_dir: Path) -> dict:
    t, task, labels = ctx.config.train, ctx.task, ctx.labels
    cfg = t.lstm
    torch.manual_seed(t.seed)
    rng = np.random.default_rng(t.seed)
    tokenizer = WordTokenizer.learn(ctx.texts("train"), vocab_size=cfg.vocab_size, min_freq=cfg.min_freq)
    train_ids = [tokenizer.ids(x, t.max_length) for x in ctx.texts("train")]
    val_ids = [tokenizer.ids(x, t.max_length) for x in ctx.texts("validation")]
    y_train = task.linear_targets(ctx.frame("train"), labels)
    y_val = task.linear_targets(ctx.frame("validation"), labels)
    spec = LstmSpec(len(tokenizer), len(labels), cfg.embedding_dim, cfg.hidden_size, cfg.layers, cfg.dropout, cfg.pooling)
    model = BiLstmClassifier(spec)
    loss_fn, target_dtype = _loss_function(ctx, y_train)
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.learning_rate, weight_decay=t.weight_decay)
    planned = max(1, int(np.ceil(t.planned_epochs)))
    logger.info(
        "lstm: vocabulary %d words, %d parameters, up to %d epochs", len(tokenizer), sum(p.numel() for p in model.parameters()), planned
    )

    best_score, best_state, best_epoch, since_best, stopped_early = -np.inf, None, 0, 0, False
    texts_seen = tokens_seen = positions_seen = 0
    train_seconds, step = 0.0, 0
    lengths = [len(s) for s in train_ids]
    for epoch in range(1, planned + 1):
        model.train()
        started, total_loss = time.perf_counter(), 0.0
        batches = length_batches(lengths, t.batch_size, rng)
        for rows in tqdm(batches, desc=f"lstm epoch {epoch}/{planned}", unit="batch", leave=False):
            ids, lens = pad_batch([train_ids[i] for i in rows])
            loss = loss_fn(model(ids, lens), torch.as_tensor(y_train[rows], dtype=target_dtype))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
            optimizer.step()
            step += 1
            total_loss += loss.item() * len(rows)
            texts_seen, tokens_seen, positions_seen = texts_seen + len(rows), tokens_seen + int(lens.sum()), positions_seen + ids.numel()
        train_seconds += time.perf_counter() - started
        scores = task.validation_scores(y_val, lstm_logits(model, val_ids, batch_size=t.eval_batch_size))
        train_loss = total_loss / max(len(train_ids), 1)
        append_metrics(
            ctx.run.metrics_file, {"step": step, "epoch": epoch, "loss": train_loss, **{f"eval_{k}": v for k, v in scores.items()}}
        )
        logger.info("epoch %d validation: %s (train loss %.4f)", epoch, {k: round(v, 4) for k, v in scores.items()}, train_loss)
        if best_state is None or scores[t.metric] > best_score:
            best_score, best_state, best_epoch, since_best = scores[t.metric], copy.deepcopy(model.state_dict()), epoch, 0
        else:
            since_best += 1
            if t.early_stopping_patience and since_best >= t.early_stopping_patience and epoch < planned:
                stopped_early = True
                break
    model.load_state_dict(best_state)
    model.eval()
    learned = task.finish_training(
        validation_logits=lambda: lstm_logits(model, val_ids, batch_size=t.eval_batch_size),
        frame=ctx.frame("validation"),
        labels=labels,
        train=t,
    )
    save_lstm(model, tokenizer, out_dir, max_length=t.max_length)
    extra = {"vocabulary_size": len(tokenizer), "architecture": cfg.model_dump(), **learned}
    ModelMeta(kind="lstm", max_length=t.max_length, extra=extra, **ctx.meta_fields()).write(out_dir)
    seconds = max(train_seconds, 1e-9)
    return {
        "global_step": step,
        "epochs_done": epoch,
        f"best_validation_{t.metric}": best_score,
        "vocabulary_size": len(tokenizer),
        "parameters": sum(p.numel() for p in model.parameters()),
        "stopped_epoch": epoch,
        "planned_epochs": planned,
        "best_epoch": best_epoch,
        "stop_reason": _stop_reason(t, stopped_early),
        "throughput": {
            "train_texts_per_second": round(texts_seen / seconds, 2),
            "train_tokens_per_second": round(tokens_seen / seconds, 1),
            "padding_share": round(1 - tokens_seen / positions_seen, 4) if positions_seen else None,
            "train_seconds": round(train_seconds, 2),
        },
        **learned,
    }
