"""Binary decisions for rare positives (spam, fraud, abuse): a threshold on the positive label's probability, tuned on validation.

With 13 % positives, "the most probable label" is a poor rule: the threshold that maximises
the positive label's F1 on validation is usually far from 0.5. It is chosen once, saved with
the model (`tuneforge.json`, `extra.decision`) and applied by predict, serve and evaluation.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import precision_recall_curve

from tuneforge.errors import ConfigError


def positive_index(labels: list[str], positive: str) -> int:
    if len(labels) != 2:
        raise ConfigError(f"train.positive_label applies to two-label classification; this data has {len(labels)} labels")
    if positive not in labels:
        raise ConfigError(f"train.positive_label: {positive!r} is not a label of the data ({', '.join(labels)})")
    return labels.index(positive)


def tune_threshold(y_true: np.ndarray, probs: np.ndarray, positive: int) -> dict:
    """The threshold on P(positive) with the best positive-label F1 on these (validation) rows."""
    is_positive = y_true == positive
    if not is_positive.any() or is_positive.all():
        return {"positive": positive, "threshold": 0.5, "validation_f1": None, "note": "validation holds one label only: 0.5 kept"}
    precision, recall, thresholds = precision_recall_curve(is_positive, probs[:, positive])
    f1 = 2 * precision[:-1] * recall[:-1] / np.clip(precision[:-1] + recall[:-1], 1e-12, None)
    best = int(np.argmax(f1))
    return {"positive": positive, "threshold": round(float(thresholds[best]), 6), "validation_f1": round(float(f1[best]), 4)}


def decide(probs: np.ndarray, decision: dict | None) -> np.ndarray:
    """Label indices: the tuned threshold on the positive label when there is one, else the most probable label."""
    if not decision:
        return probs.argmax(axis=1)
    positive = decision["positive"]
    return np.where(probs[:, positive] >= decision["threshold"], positive, 1 - positive)


def precision_at_recall(y_true: np.ndarray, probs: np.ndarray, positive: int, recall_floor: float) -> float | None:
    """The best precision any threshold reaches while keeping at least `recall_floor` of the positives."""
    is_positive = y_true == positive
    if not is_positive.any():
        return None
    precision, recall, _ = precision_recall_curve(is_positive, probs[:, positive])
    ok = recall >= recall_floor
    return round(float(precision[ok].max()), 4) if ok.any() else None
