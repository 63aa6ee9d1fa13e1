"""`tfidf` method: the classical baseline every report shows beside the transformer.

Saved as JSON (vocabulary, settings) and safetensors (idf, weights): no pickle.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from tuneforge.models.artifact import ModelMeta
from tuneforge.train.context import TrainContext, linear_head_weights, score
from tuneforge.train.logging_callback import append_metrics

logger = logging.getLogger(__name__)


def train_tfidf(ctx: TrainContext, out_dir: Path) -> dict:
    cfg, seed = ctx.config.train.tfidf, ctx.config.train.seed
    params = {
        "ngram_range": (1, cfg.ngram_max),
        "sublinear_tf": True,
        "lowercase": True,
        "strip_accents": "unicode",
        "max_features": cfg.max_features,
    }
    vectorizer = TfidfVectorizer(**params)
    x_train = vectorizer.fit_transform(ctx.texts("train"))
    clf = LogisticRegression(C=cfg.c, max_iter=3000, random_state=seed).fit(x_train, ctx.label_ids("train"))
    scores = score(ctx.label_ids("validation"), clf.predict(vectorizer.transform(ctx.texts("validation"))))
    append_metrics(ctx.metrics_file, {"step": 0, **{f"eval_{k}": v for k, v in scores.items()}})
    logger.info("tfidf validation: %s", {k: round(v, 4) for k, v in scores.items()})

    weight, bias = linear_head_weights(clf, len(ctx.data.labels))
    vocabulary = {term: int(i) for term, i in vectorizer.vocabulary_.items()}
    params.pop("max_features")  # the saved vocabulary already fixes the feature set
    spec = {"params": {**params, "ngram_range": list(params["ngram_range"])}, "vocabulary": vocabulary}
    (out_dir / "vectorizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    save_file({"idf": np.ascontiguousarray(vectorizer.idf_, dtype=np.float64)}, str(out_dir / "idf.safetensors"))
    save_file({"weight": weight, "bias": bias}, str(out_dir / "head.safetensors"))
    ModelMeta(
        kind="tfidf",
        labels=ctx.data.labels,
        method="tfidf",
        strip_html=ctx.config.data.strip_html,
        extra={"vocabulary_size": len(vocabulary)},
    ).write(out_dir)
    return {"vocabulary_size": len(vocabulary), **{f"best_validation_{k}": v for k, v in scores.items()}}
