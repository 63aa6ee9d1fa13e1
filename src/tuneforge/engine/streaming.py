"""`tfidf` and `head` on a streamed run (`data.streaming`): linear models learned a mini-batch at a time.

Rows come from the run's split files through a bounded shuffle buffer into
scikit-learn's `SGDClassifier(loss="log_loss").partial_fit` (logistic
regression by SGD), one model per regularisation strength, for a number of
epochs; the best (strength, epoch) on validation is kept, as the in-memory
methods pick C on validation. `alpha = 1 / (C x training rows)` is the SGD
form of the same penalty. `tfidf` reads hashed n-grams (`models/hashing.py`);
`head` encodes every split once with the frozen encoder into a float32 file
on disk (1M x 384 floats = 1.5 GB: too much to hold, cheap to re-read) and
trains on it. Memory does not grow with the rows: one chunk, one shuffle
buffer, the model, and 2 + 4 x labels bytes per validation row.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from tuneforge.data.shuffle import ShuffleBuffer
from tuneforge.engine.callbacks import append_metrics
from tuneforge.engine.context import TrainContext
from tuneforge.models.artifact import ModelMeta
from tuneforge.models.encode import linear_head_weights, softmax
from tuneforge.tasks.base import label_index

logger = logging.getLogger(__name__)
BATCH_ROWS = 2048  # rows per partial_fit call: large enough to amortise the call, small next to any chunk
DEFAULT_MAX_EPOCHS = 20

# (rng, shuffle buffer) -> (features, targets) mini-batches; rng None: file order, no shuffle
Batches = Callable[[np.random.Generator | None, ShuffleBuffer | None], Iterator[tuple[object, np.ndarray]]]


@dataclass
class StreamFit:
    weight: np.ndarray
    bias: np.ndarray
    scores: dict[str, float]
    alpha: float
    epoch: int
    epochs_run: int
    shuffle_peak: int
    extra: dict


def train_tfidf_streaming(ctx: TrainContext, out_dir: Path) -> dict:
    from tuneforge.models.hashing import HashedTfidf

    cfg, data = ctx.config.train.tfidf, ctx.data
    features = HashedTfidf(n_features=cfg.hash_features, ngram_max=cfg.ngram_max)
    features.fit_idf(chunk["text"].tolist() for chunk in data.chunks("train"))
    index = label_index(ctx.labels)

    def batches(split: str) -> Batches:
        def make(rng, buffer):
            rows = ((t, index[y]) for chunk in data.chunks(split) for t, y in zip(chunk["text"].tolist(), chunk["label"].tolist()))
            for texts, y in _grouped(_shuffled(rows, rng, buffer)):
                yield features.transform(texts), y

        return make

    fit = fit_streaming(ctx, batches("train"), batches("validation"), c_grid=[cfg.c])
    (out_dir / "vectorizer.json").write_text(json.dumps(features.spec()), encoding="utf-8")
    save_file({"idf": np.ascontiguousarray(features.idf_, dtype=np.float64)}, str(out_dir / "idf.safetensors"))
    save_file({"weight": fit.weight, "bias": fit.bias}, str(out_dir / "head.safetensors"))
    extra = {"vectorizer": "hashing", "hash_features": cfg.hash_features, "streaming": True, **fit.extra}
    ModelMeta(kind="tfidf", extra=extra, **ctx.meta_fields()).write(out_dir)
    return _info(fit, {"hash_features": cfg.hash_features})


def train_head_streaming(ctx: TrainContext, out_dir: Path) -> dict:
    from tuneforge.engine.probe import Probe, save_probe
    from tuneforge.models.loading import load_encoder, load_tokenizer
    from tuneforge.tasks.base import LinearFit

    t, name = ctx.config.train, ctx.config.model.name
    tokenizer = load_tokenizer(ctx.model_path, name=name, remote=ctx.config.model.trust_remote_code)
    encoder = load_encoder(ctx.model_path, name=name, remote=ctx.config.model.trust_remote_code)
    with tempfile.TemporaryDirectory(prefix=".features-", dir=ctx.run.path) as scratch:
        spills = {split: _encode_split(ctx, split, encoder, tokenizer, Path(scratch)) for split in ("train", "validation")}
        fit = fit_streaming(ctx, spills["train"].batches(ctx), spills["validation"].batches(ctx), c_grid=list(t.head.c_grid))
        del spills  # close the memory maps before the folder goes
    probe = Probe(
        fit=LinearFit(weight=fit.weight, bias=fit.bias, scores=fit.scores, extra=fit.extra), c=None, encoder=encoder, tokenizer=tokenizer
    )
    save_probe(probe, ctx, out_dir, extra={"streaming": True, "alpha": fit.alpha})
    return _info(fit, {})


def _info(fit: StreamFit, extra: dict) -> dict:
    return {
        **extra,
        "streaming": {"alpha": fit.alpha, "best_epoch": fit.epoch, "epochs_run": fit.epochs_run, "shuffle_buffer_peak": fit.shuffle_peak},
        **{f"best_validation_{k}": v for k, v in fit.scores.items()},
        **fit.extra,
    }


class _Spill:
    """A split's pooled embeddings in a float32 .npy file on disk, read back a batch at a time."""

    def __init__(self, path: Path, targets: np.ndarray):
        self.features = np.load(path, mmap_mode="r")
        self.targets = targets

    def batches(self, ctx: TrainContext) -> Batches:
        def make(rng, buffer):
            rows = _shuffled(iter(range(len(self.targets))), rng, buffer)
            for rows_, _ in _grouped((i, 0) for i in rows):
                picked = np.asarray(rows_)
                order = np.argsort(picked)  # read the file forwards; train in the shuffled order
                block = np.empty((len(picked), self.features.shape[1]), dtype=np.float32)
                block[order] = self.features[picked[order]]
                yield block, self.targets[picked]

        return make


def _encode_split(ctx: TrainContext, split: str, encoder, tokenizer, scratch: Path) -> _Spill:
    from tuneforge.models.encode import embed_texts

    t, index = ctx.config.train, label_index(ctx.labels)
    n, path = ctx.data.rows(split), scratch / f"{split}.npy"
    targets = np.zeros(n, dtype=np.int16)
    features, at = None, 0
    for chunk in ctx.data.chunks(split):
        x = embed_texts(
            encoder, tokenizer, chunk["text"].tolist(), max_length=t.max_length, batch_size=t.eval_batch_size, pooling=t.head.pooling
        )
        if features is None:
            features = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, x.shape[1]))
        features[at : at + len(x)] = x
        targets[at : at + len(x)] = [index[y] for y in chunk["label"]]
        at += len(x)
        logger.info("embedded %s: %d / %d rows", split, at, n)
    features.flush()
    del features
    return _Spill(path, targets)


def _shuffled(rows: Iterator, rng: np.random.Generator | None, buffer: ShuffleBuffer | None) -> Iterator:
    return rows if rng is None or buffer is None else buffer.shuffle(rows, rng)


def _grouped(rows: Iterator[tuple[object, int]]) -> Iterator[tuple[list, np.ndarray]]:
    items, targets = [], []
    for item, y in rows:
        items.append(item)
        targets.append(y)
        if len(items) == BATCH_ROWS:
            yield items, np.asarray(targets, dtype=np.int64)
            items, targets = [], []
    if items:
        yield items, np.asarray(targets, dtype=np.int64)


def fit_streaming(ctx: TrainContext, train: Batches, validation: Batches, *, c_grid: list[float]) -> StreamFit:
    """SGD logistic regression per C over shuffled epochs; early stopping and the choice of C on validation."""
    from sklearn.linear_model import SGDClassifier

    t, labels = ctx.config.train, ctx.labels
    n_train = ctx.data.rows("train")
    classes = np.arange(len(labels))
    weights = _class_weights(ctx) if t.class_weight == "balanced" else None
    models = [
        SGDClassifier(loss="log_loss", alpha=1.0 / (c * n_train), random_state=t.seed, class_weight=weights, average=False) for c in c_grid
    ]
    epochs = math.ceil(t.epochs) if t.epochs is not None else min(DEFAULT_MAX_EPOCHS, math.ceil(t.max_epochs))
    patience = None if t.epochs is not None else t.early_stopping_patience
    buffer = ShuffleBuffer(ctx.config.data.shuffle_buffer)
    best, since_best, epoch = None, 0, 0
    for epoch in range(1, epochs + 1):
        for x, y in train(np.random.default_rng([t.seed, epoch]), buffer):
            for model in models:
                model.partial_fit(x, y, classes=classes)
        improved = False
        for c, model, (y_val, logits) in zip(c_grid, models, _validate(models, validation, len(labels))):
            scores = ctx.task.validation_scores(y_val, logits)
            append_metrics(ctx.run.metrics_file, {"step": epoch, "epoch": epoch, "C": c, **{f"eval_{k}": v for k, v in scores.items()}})
            logger.info("epoch %d C=%g validation: %s", epoch, c, {k: round(v, 4) for k, v in scores.items()})
            if best is None or scores[t.metric] > best[0][t.metric]:
                best = (scores, model.alpha, epoch, *_weights(model, len(labels)))
                improved = True
        since_best = 0 if improved else since_best + 1
        if patience is not None and since_best >= patience:
            logger.info("validation %s did not improve for %d epoch(s): stopping at epoch %d", t.metric, patience, epoch)
            break
    scores, alpha, best_epoch, weight, bias = best
    extra = _decision(ctx, validation, weight, bias) if t.positive_label else {}
    return StreamFit(weight, bias, scores, float(alpha), best_epoch, epoch, buffer.peak, extra)


def _weights(model, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    return linear_head_weights(model.coef_, model.intercept_, n_labels=n_labels)


def _validate(models, validation: Batches, n_labels: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(targets, logits) of every model on the validation split, read once for all of them."""
    ys, logits = [], [[] for _ in models]
    heads = [_weights(model, n_labels) for model in models]
    for x, y in validation(None, None):
        ys.append(y)
        for part, (weight, bias) in zip(logits, heads):
            part.append(np.asarray(x @ weight.T) + bias)
    y_all = np.concatenate(ys)
    return [(y_all, np.concatenate(part).astype(np.float32)) for part in logits]


def _decision(ctx: TrainContext, validation: Batches, weight: np.ndarray, bias: np.ndarray) -> dict:
    """Two labels with `train.positive_label`: the positive label's threshold, tuned on validation (as in memory)."""
    from tuneforge.tasks.classify.decision import positive_index, tune_threshold

    ys, probs = [], []
    for x, y in validation(None, None):
        ys.append(y)
        probs.append(softmax(np.asarray(x @ weight.T) + bias))
    index = positive_index(ctx.labels, ctx.config.train.positive_label)
    return {"decision": tune_threshold(np.concatenate(ys), np.concatenate(probs), index)}


def _class_weights(ctx: TrainContext) -> dict[int, float]:
    """`balanced` from the label counts the streaming pass recorded: rows / (labels x rows of the label)."""
    counts = ctx.data.report["splits"]["train"]["label_counts"]
    total = sum(counts.values())
    return {i: total / (len(ctx.labels) * counts[label]) for i, label in enumerate(ctx.labels)}
