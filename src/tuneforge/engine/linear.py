"""`head` and `tfidf` methods: a linear head on fixed features, fitted by the task.

`head`: frozen pretrained encoder, pooled embeddings — the fast CPU path for
small data (one forward pass per text, no backprop through the encoder).
`tfidf`: TF-IDF word n-grams — the classical baseline every report shows.
The regularisation strength is picked on validation. Everything is saved as
safetensors and JSON: no pickle.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from tuneforge.engine.callbacks import append_metrics
from tuneforge.engine.context import TrainContext
from tuneforge.models.artifact import ModelMeta
from tuneforge.models.encode import embed_texts
from tuneforge.models.loading import load_encoder, load_tokenizer

logger = logging.getLogger(__name__)


def fit_best_linear(ctx: TrainContext, x_train, x_val, c_grid: list[float]):
    """Fit the task's linear head for every C; keep the best on validation by `train.metric`."""
    t, task = ctx.config.train, ctx.task
    y_train = task.linear_targets(ctx.frame("train"), ctx.labels)
    y_val = task.linear_targets(ctx.frame("validation"), ctx.labels)
    best = None
    for c in c_grid:
        fit = task.fit_linear(x_train, y_train, x_val, y_val, labels=ctx.labels, c=c, seed=t.seed, train=t)
        append_metrics(ctx.run.metrics_file, {"step": 0, "C": c, **{f"eval_{k}": v for k, v in fit.scores.items()}})
        logger.info("%s C=%g validation: %s", t.method, c, {k: round(v, 4) for k, v in fit.scores.items()})
        if best is None or fit.scores[t.metric] > best[0].scores[t.metric]:
            best = (fit, c)
    return best


def train_head(ctx: TrainContext, out_dir: Path) -> dict:
    t, name, remote = ctx.config.train, ctx.config.model.name, ctx.config.model.trust_remote_code
    tokenizer = load_tokenizer(ctx.model_path, name=name, remote=remote)
    encoder = load_encoder(ctx.model_path, name=name, remote=remote)

    def features(split: str) -> np.ndarray:
        return embed_texts(
            encoder, tokenizer, ctx.texts(split), max_length=t.max_length, batch_size=t.eval_batch_size, pooling=t.head.pooling, progress=f"embedding {split}"
        )

    fit, c = fit_best_linear(ctx, features("train"), features("validation"), t.head.c_grid)
    encoder.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    save_file({"weight": fit.weight, "bias": fit.bias}, str(out_dir / "head.safetensors"))
    meta = ModelMeta(kind="head", base_model=name, max_length=t.max_length, pooling=t.head.pooling, extra={"C": c, **fit.extra}, **ctx.meta_fields())
    meta.write(out_dir)
    return {"chosen_C": c, **{f"best_validation_{k}": v for k, v in fit.scores.items()}, **fit.extra}


def train_tfidf(ctx: TrainContext, out_dir: Path) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer

    cfg = ctx.config.train.tfidf
    params = {"ngram_range": (1, cfg.ngram_max), "sublinear_tf": True, "lowercase": True, "strip_accents": "unicode", "max_features": cfg.max_features}
    vectorizer = TfidfVectorizer(**params)
    x_train = vectorizer.fit_transform(ctx.texts("train"))
    fit, _ = fit_best_linear(ctx, x_train, vectorizer.transform(ctx.texts("validation")), [cfg.c])
    vocabulary = {term: int(i) for term, i in vectorizer.vocabulary_.items()}
    params.pop("max_features")  # the saved vocabulary already fixes the feature set
    spec = {"params": {**params, "ngram_range": list(params["ngram_range"])}, "vocabulary": vocabulary}
    (out_dir / "vectorizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    save_file({"idf": np.ascontiguousarray(vectorizer.idf_, dtype=np.float64)}, str(out_dir / "idf.safetensors"))
    save_file({"weight": fit.weight, "bias": fit.bias}, str(out_dir / "head.safetensors"))
    ModelMeta(kind="tfidf", extra={"vocabulary_size": len(vocabulary), **fit.extra}, **ctx.meta_fields()).write(out_dir)
    return {"vocabulary_size": len(vocabulary), **{f"best_validation_{k}": v for k, v in fit.scores.items()}, **fit.extra}
