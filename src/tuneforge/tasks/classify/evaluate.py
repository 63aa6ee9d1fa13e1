"""Evaluate a single-label predictor on a labeled table and write eval/ (metrics, plots, errors)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from tuneforge.atomic import atomic_file, atomic_write_json
from tuneforge.plots import save_confusion_png, save_precision_recall_png, save_reliability_png
from tuneforge.tasks.base import label_index
from tuneforge.tasks.classify.decision import decide, precision_at_recall
from tuneforge.tasks.classify.metrics import classification_metrics
from tuneforge.tasks.classify.slices import slice_groups, slice_metrics

ERRORS_KEPT = 50


def evaluate_frame(predictor, frame: pd.DataFrame, out_dir: Path, *, split: str, slices: list[str] = (), min_slice_rows: int = 30) -> dict:
    """Score `frame` (text, label, source) and write metrics.json, slices.json, confusion.png, reliability.png, errors.csv."""
    return evaluate_chunks(predictor, [frame], out_dir, split=split, slices=slices, min_slice_rows=min_slice_rows)


def evaluate_chunks(
    predictor, chunks: Iterable[pd.DataFrame], out_dir: Path, *, split: str, slices: list[str] = (), min_slice_rows: int = 30
) -> dict:
    """`evaluate_frame` over rows that arrive in chunks (a streamed run's held-out split).

    Texts are not kept: per row only the true label, the probabilities and the slice
    groups (4 + 4 x labels bytes and a few category codes), plus the most confident
    mistakes seen so far for errors.csv."""
    labels = predictor.labels
    index = label_index(labels)
    decision = predictor.meta.extra.get("decision")
    y_parts, prob_parts, group_parts, worst, n = [], [], {}, None, 0
    for frame in chunks:
        y_true = np.array([index[label] for label in frame["label"]], dtype=np.int64)
        probs = predictor.predict_proba(frame["text"].tolist(), progress=f"evaluating {split}").astype(np.float32)
        for name, groups in slice_groups(frame, list(slices)).items():
            group_parts.setdefault(name, []).append(groups.reset_index(drop=True).astype("category"))
        worst = _worst_errors(worst, error_rows(frame, y_true, probs, labels, y_pred=decide(probs, decision)))
        y_parts.append(y_true)
        prob_parts.append(probs)
        n += len(frame)
    y_true = np.concatenate(y_parts) if y_parts else np.zeros(0, dtype=np.int64)
    probs = np.concatenate(prob_parts) if prob_parts else np.zeros((0, len(labels)), dtype=np.float32)
    groups = {name: pd.Series(union_categoricals(parts, ignore_order=True)) for name, parts in group_parts.items()}
    y_pred = decide(probs, decision)
    metrics = {"split": split, "task": "classify", **classification_metrics(y_true, probs, labels, y_pred)}
    metrics["slices"] = slice_metrics(y_true, probs, labels, groups, min_rows=min_slice_rows, y_pred=y_pred)
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
    save_confusion_png(metrics["confusion_matrix"], labels, out_dir / "confusion.png", title=f"Confusion matrix ({split}, n={n})")
    save_reliability_png(y_true, probs, out_dir / "reliability.png")
    _write_table(worst if worst is not None else error_rows(pd.DataFrame(), y_true[:0], probs[:0], labels), out_dir / "errors.csv")
    return metrics


def _worst_errors(kept: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """The ERRORS_KEPT most confident mistakes of both tables; ties keep file order (earlier rows first)."""
    both = new if kept is None else pd.concat([kept, new], ignore_index=True)
    return both.sort_values("confidence", ascending=False, kind="stable").head(ERRORS_KEPT).reset_index(drop=True)


def error_rows(frame: pd.DataFrame, y_true: np.ndarray, probs: np.ndarray, labels: list[str], *, y_pred=None) -> pd.DataFrame:
    """The most confident mistakes first: where the model is surest and wrong is where to look."""
    pred = probs.argmax(axis=1) if y_pred is None else np.asarray(y_pred)
    wrong = np.flatnonzero(pred != y_true)
    wrong = wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")][:ERRORS_KEPT]
    empty = np.array([], dtype=object)
    return pd.DataFrame(
        {
            "source": frame["source"].to_numpy()[wrong] if len(frame) else empty,
            "true": [labels[y_true[i]] for i in wrong],
            "predicted": [labels[pred[i]] for i in wrong],
            "confidence": probs[wrong, pred[wrong]].round(4),
            "true_label_prob": probs[wrong, y_true[wrong]].round(4),
            "text": frame["text"].to_numpy()[wrong] if len(frame) else empty,
        }
    )


def _write_table(table: pd.DataFrame, path: Path) -> None:
    with atomic_file(path, "w", encoding="utf-8", newline="") as fh:
        table.to_csv(fh, index=False)
