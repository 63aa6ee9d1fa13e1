"""Multi-label metrics from multi-hot truth and predicted label sets, and per-label threshold tuning."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score, hamming_loss, precision_recall_fscore_support

THRESHOLD_GRID = np.round(np.arange(0.05, 0.96, 0.05), 2)


def selection_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """accuracy (= subset accuracy: every label of a text right), macro_f1, micro_f1."""
    return {
        "accuracy": float((y_true == y_pred).all(axis=1).mean()) if len(y_true) else 0.0,
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
    }


def tune_thresholds(y_true: np.ndarray, probs: np.ndarray, *, fixed: float | None = None) -> list[float]:
    """Per label, the threshold on the grid with the best validation F1 (ties: the one nearest 0.5).

    A label with no positive example in validation keeps 0.5: there is nothing to tune it on.
    """
    if fixed is not None:
        return [float(fixed)] * y_true.shape[1]
    thresholds = []
    for j in range(y_true.shape[1]):
        if not y_true[:, j].any():
            thresholds.append(0.5)
            continue
        scores = [f1_score(y_true[:, j], probs[:, j] >= t, zero_division=0) for t in THRESHOLD_GRID]
        best = max(scores)
        candidates = [t for t, s in zip(THRESHOLD_GRID, scores) if s >= best - 1e-12]
        thresholds.append(float(min(candidates, key=lambda t: abs(t - 0.5))))
    return thresholds


def multilabel_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict:
    """Micro/macro F1, subset accuracy, Hamming loss, per-label precision / recall / F1 / support."""
    out: dict = {"n": int(len(y_true)), **selection_scores(y_true, y_pred)}
    out["subset_accuracy"] = out["accuracy"]
    out["hamming_loss"] = float(hamming_loss(y_true, y_pred)) if len(y_true) else 0.0
    for average in ("micro", "macro", "weighted", "samples"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average=average, zero_division=0)
        out[f"{average}_precision"], out[f"{average}_recall"], out[f"{average}_f1"] = float(p), float(r), float(f)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    out["per_label"] = {
        label: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])} for i, label in enumerate(labels)
    }
    out["labels"] = list(labels)
    out["mean_labels_true"] = float(y_true.sum(axis=1).mean()) if len(y_true) else 0.0
    out["mean_labels_predicted"] = float(y_pred.sum(axis=1).mean()) if len(y_true) else 0.0
    return out
