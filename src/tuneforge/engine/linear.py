"""`head` and `tfidf` methods: a linear head on fixed features, fitted by the task.

`head`: frozen pretrained encoder, pooled embeddings — the fast CPU path for
small data (one forward pass per text, no backprop through the encoder); it is
the probe of `engine/probe.py`, saved. `tfidf`: TF-IDF word n-grams — the
classical baseline every report shows, and one of the floors a `full` / `lora`
run must beat on validation to be kept (`train.floor`). The regularisation
strength is picked on validation. Everything is saved as safetensors and JSON: no pickle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from tuneforge.engine.context import TrainContext
from tuneforge.engine.probe import fit_best_linear, fit_probe, save_probe
from tuneforge.models.artifact import ModelMeta
from tuneforge.tasks.base import LinearFit


def train_head(ctx: TrainContext, out_dir: Path) -> dict:
    probe = fit_probe(ctx)
    save_probe(probe, ctx, out_dir)
    return {"chosen_C": probe.c, **{f"best_validation_{k}": v for k, v in probe.fit.scores.items()}, **probe.fit.extra}


@dataclass
class TfidfModel:
    """A fitted TF-IDF baseline, not yet saved: the `tfidf` method's model, or a fine-tune's floor."""

    vectorizer: object
    params: dict
    fit: LinearFit

    def score(self, metric: str) -> float:
        return self.fit.scores[metric]


def fit_tfidf(ctx: TrainContext) -> TfidfModel:
    """TF-IDF word n-grams and the task's linear head, fitted on the run's train split and scored on validation."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    cfg = ctx.config.train.tfidf
    params = {
        "ngram_range": (1, cfg.ngram_max),
        "sublinear_tf": True,
        "lowercase": True,
        "strip_accents": "unicode",
        "max_features": cfg.max_features,
    }
    vectorizer = TfidfVectorizer(**params)
    x_train = vectorizer.fit_transform(ctx.texts("train"))
    fit, _ = fit_best_linear(ctx, x_train, vectorizer.transform(ctx.texts("validation")), [cfg.c], baseline="tfidf")
    return TfidfModel(vectorizer=vectorizer, params=params, fit=fit)


def save_tfidf(model: TfidfModel, ctx: TrainContext, out_dir: Path, *, extra: dict | None = None) -> dict:
    """The baseline as a `tfidf` model folder (vocabulary and idf as JSON / safetensors, no pickle); returns its train info."""
    vocabulary = {term: int(i) for term, i in model.vectorizer.vocabulary_.items()}
    params = {k: v for k, v in model.params.items() if k != "max_features"}  # the saved vocabulary already fixes the feature set
    spec = {"params": {**params, "ngram_range": list(params["ngram_range"])}, "vocabulary": vocabulary}
    (out_dir / "vectorizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    save_file({"idf": np.ascontiguousarray(model.vectorizer.idf_, dtype=np.float64)}, str(out_dir / "idf.safetensors"))
    fit = model.fit
    save_file({"weight": fit.weight, "bias": fit.bias}, str(out_dir / "head.safetensors"))
    ModelMeta(kind="tfidf", extra={"vocabulary_size": len(vocabulary), **fit.extra, **(extra or {})}, **ctx.meta_fields()).write(out_dir)
    return {"vocabulary_size": len(vocabulary), **fit.extra}


def train_tfidf(ctx: TrainContext, out_dir: Path) -> dict:
    model = fit_tfidf(ctx)
    info = save_tfidf(model, ctx, out_dir)
    return {**info, **{f"best_validation_{k}": v for k, v in model.fit.scores.items()}}
