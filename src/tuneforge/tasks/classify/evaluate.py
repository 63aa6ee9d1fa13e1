"""Evaluate a single-label predictor on a labeled table and write eval/ (metrics, plots, errors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tuneforge.atomic import atomic_file, atomic_write_json
from tuneforge.plots import save_confusion_png, save_precision_recall_png, save_reliability_png
from tuneforge.tasks.base import label_index
from tuneforge.tasks.classify.decision import decide, precision_at_recall
from tuneforge.tasks.classify.metrics import classification_metrics
from tuneforge.tasks.classify.slices import slice_groups, slice_metrics

ERRORS_KEPT = 50


def evaluate_frame(predictor, frame: pd.DataFrame, out_dir: Path, *, split: str, slices: list[str] = (), min_slice_rows: int = 30) -> dict:
    """Score `frame` (text, label, source) and write metrics.json, slices.json, confusion.png, reliability.png, errors.csv."""
    labels = predictor.labels
    index = label_index(labels)
    y_true = np.array([index[label] for label in frame["label"]])
    probs = predictor.predict_proba(frame["text"].tolist(), progress=f"evaluating {split}")
    decision = predictor.meta.extra.get("decision")
    y_pred = decide(probs, decision)
    metrics = {"split": split, "task": "classify", **classification_metrics(y_true, probs, labels, y_pred)}
    metrics["slices"] = slice_metrics(y_true, probs, labels, slice_groups(frame, list(slices)), min_rows=min_slice_rows, y_pred=y_pred)
    out_dir.mkdir(parents=True, exist_ok=True)
    if decision:
        metrics["decision"] = {**decision, "positive_label": labels[decision["positive"]]}
        for floor in (0.8, 0.9):
            metrics[f"precision_at_recall_{floor}"] = precision_at_recall(y_true, probs, decision["positive"], floor)
        save_precision_recall_png(
            y_true == decision["positive"], probs[:, decision["positive"]], decision["threshold"], out_dir / "precision_recall.png"
        )
    atomic_write_json(out_dir / "slices.json", metrics["slices"])
    atomic_write_json(out_dir / "metrics.json", metrics)
    save_confusion_png(metrics["confusion_matrix"], labels, out_dir / "confusion.png", title=f"Confusion matrix ({split}, n={len(frame)})")
    save_reliability_png(y_true, probs, out_dir / "reliability.png")
    write_errors(frame, y_true, probs, labels, out_dir / "errors.csv", y_pred=y_pred)
    return metrics


def write_errors(frame: pd.DataFrame, y_true: np.ndarray, probs: np.ndarray, labels: list[str], path: Path, *, y_pred=None) -> int:
    """The most confident mistakes first: where the model is surest and wrong is where to look."""
    pred = probs.argmax(axis=1) if y_pred is None else np.asarray(y_pred)
    wrong = np.flatnonzero(pred != y_true)
    wrong = wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")][:ERRORS_KEPT]
    table = pd.DataFrame(
        {
            "source": frame["source"].to_numpy()[wrong],
            "true": [labels[y_true[i]] for i in wrong],
            "predicted": [labels[pred[i]] for i in wrong],
            "confidence": probs[wrong, pred[wrong]].round(4),
            "true_label_prob": probs[wrong, y_true[wrong]].round(4),
            "text": frame["text"].to_numpy()[wrong],
        }
    )
    with atomic_file(path, "w", encoding="utf-8", newline="") as fh:
        table.to_csv(fh, index=False)
    return len(wrong)
