"""Fairness slices: the same metrics per group of rows, and the largest gap between groups.

Groups come from metadata columns the data layer keeps (`evaluate.slices`, e.g. a
customer segment or a language), plus two automatic ones: text length (quartiles)
and the true label. Per group, through `fairlearn`'s `MetricFrame`: accuracy, macro
F1, expected calibration error and the share of rows predicted as each class
(selection rate); for binary tasks also fairlearn's demographic-parity and
equalized-odds differences. A group smaller than `min_rows` is listed but left out
of the gaps and flagged, because a difference there cannot be told from noise.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from tuneforge.tasks.slicing import length_groups, metadata_groups, summarise

__all__ = ["AUTOMATIC", "length_groups", "slice_groups", "slice_metrics"]

AUTOMATIC = ("text_length", "label")


def slice_groups(frame: pd.DataFrame, columns: list[str]) -> dict[str, pd.Series]:
    groups = metadata_groups(frame, columns)
    groups["text_length"] = length_groups(frame["text"])
    groups["label"] = frame["label"].astype(str)
    return groups


def slice_metrics(
    y_true: np.ndarray,
    probs: np.ndarray,
    labels: list[str],
    groups: dict[str, pd.Series],
    *,
    min_rows: int,
    y_pred: np.ndarray | None = None,
) -> dict:
    """Per-group metrics and the largest gaps, for every grouping in `groups` (`y_pred`: the model's decisions, default argmax)."""
    from fairlearn.metrics import MetricFrame, count, demographic_parity_difference, equalized_odds_difference
    from sklearn.metrics import accuracy_score, f1_score

    from tuneforge.tasks.classify.metrics import expected_calibration_error

    y_pred = probs.argmax(axis=1) if y_pred is None else np.asarray(y_pred)
    rows = np.arange(len(y_true))
    metrics = {
        "n": count,
        "accuracy": accuracy_score,
        "macro_f1": partial(f1_score, average="macro", zero_division=0),
        "calibration_error": lambda t, p: expected_calibration_error(t, probs[p]),
        **{f"selected_{label}": partial(_share, k=k) for k, label in enumerate(labels)},
    }
    out: dict = {}
    for name, group in groups.items():
        # calibration needs the rows' probabilities: MetricFrame passes row numbers as y_pred for that metric
        frame = MetricFrame(
            metrics={k: v for k, v in metrics.items() if k != "calibration_error"},
            y_true=y_true,
            y_pred=y_pred,
            sensitive_features=group.to_numpy(),
        )
        calibration = MetricFrame(metrics=metrics["calibration_error"], y_true=y_true, y_pred=rows, sensitive_features=group.to_numpy())
        table = frame.by_group.assign(calibration_error=calibration.by_group)
        # within one true label macro F1 says nothing useful: that grouping compares accuracy (= recall) and calibration
        compared = ("accuracy", "calibration_error") if name == "label" else ("accuracy", "macro_f1", "calibration_error")
        entry = summarise(name, table, compared=compared, min_rows=min_rows)
        judged = table[table["n"] >= min_rows]
        if len(labels) == 2 and name != "label" and len(judged) > 1:
            keep = group.isin(judged.index).to_numpy()
            entry["demographic_parity_difference"] = round(
                float(demographic_parity_difference(y_true[keep], y_pred[keep], sensitive_features=group.to_numpy()[keep])), 4
            )
            entry["equalized_odds_difference"] = round(
                float(equalized_odds_difference(y_true[keep], y_pred[keep], sensitive_features=group.to_numpy()[keep])), 4
            )
        out[name] = entry
    return out


def _share(y_true, y_pred, *, k: int) -> float:
    return float(np.mean(np.asarray(y_pred) == k)) if len(y_pred) else 0.0
