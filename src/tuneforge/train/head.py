"""`head` method: frozen pretrained encoder, logistic-regression head on pooled embeddings.

The fast CPU path for small data: one forward pass per text, no backprop
through the encoder; the regularisation strength is picked on validation.
"""

from __future__ import annotations

import logging
from pathlib import Path

from safetensors.numpy import save_file
from sklearn.linear_model import LogisticRegression

from tuneforge.errors import ConfigError
from tuneforge.models.artifact import ModelMeta
from tuneforge.predict.backends import embed_texts
from tuneforge.train.context import TrainContext, linear_head_weights, score
from tuneforge.train.logging_callback import append_metrics

logger = logging.getLogger(__name__)


def train_head(ctx: TrainContext, out_dir: Path) -> dict:
    from transformers import AutoModel, AutoTokenizer

    t = ctx.config.train
    remote = ctx.config.model.trust_remote_code
    try:
        tokenizer = AutoTokenizer.from_pretrained(ctx.model_path, trust_remote_code=remote)
        encoder = AutoModel.from_pretrained(ctx.model_path, use_safetensors=True, trust_remote_code=remote).eval()
    except OSError as exc:
        raise ConfigError(f"model.name={ctx.config.model.name!r}: could not load ({exc})") from None

    def features(split: str):
        return embed_texts(
            encoder,
            tokenizer,
            ctx.texts(split),
            max_length=t.max_length,
            batch_size=t.eval_batch_size,
            pooling=t.head.pooling,
            progress=f"embedding {split}",
        )

    x_train, x_val = features("train"), features("validation")
    y_train, y_val = ctx.label_ids("train"), ctx.label_ids("validation")
    best = None
    for c in t.head.c_grid:
        clf = LogisticRegression(C=c, max_iter=3000, random_state=t.seed).fit(x_train, y_train)
        scores = score(y_val, clf.predict(x_val))
        append_metrics(ctx.metrics_file, {"step": 0, "C": c, **{f"eval_{k}": v for k, v in scores.items()}})
        logger.info("head C=%g validation: %s", c, {k: round(v, 4) for k, v in scores.items()})
        if best is None or scores[t.metric] > best[1][t.metric]:
            best = (clf, scores, c)
    clf, scores, c = best
    weight, bias = linear_head_weights(clf, len(ctx.data.labels))
    encoder.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    save_file({"weight": weight, "bias": bias}, str(out_dir / "head.safetensors"))
    ModelMeta(
        kind="head",
        labels=ctx.data.labels,
        method="head",
        base_model=ctx.config.model.name,
        max_length=t.max_length,
        strip_html=ctx.config.data.strip_html,
        pooling=t.head.pooling,
        extra={"C": c},
    ).write(out_dir)
    return {"chosen_C": c, **{f"best_validation_{k}": v for k, v in scores.items()}}
