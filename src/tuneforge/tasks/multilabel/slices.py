"""Fairness slices of a multi-label model: micro / macro F1, subset accuracy and labels per text, per group of rows.

Groupings: each `evaluate.slices` metadata column, text length (quartiles of
characters), and label presence — one group per label holding the rows that truly
carry it, plus "(none)" for rows with no label (these groups overlap: a row with two
labels is in both). The gaps compare micro F1, macro F1 and subset accuracy; within
label presence only micro F1 and subset accuracy (macro F1 over labels a group
barely holds says little).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tuneforge.tasks.slicing import by_group, length_groups, metadata_groups, present_groups, summarise

PRESENCE = "label"
NO_LABEL = "(none)"
COMPARED = ("micro_f1", "macro_f1", "subset_accuracy")
SHOWN = ("micro_f1", "macro_f1", "subset_accuracy", "mean_labels_predicted", "mean_labels_true")  # what the report shows per group


def slice_metrics(
    frame: pd.DataFrame, y_true: np.ndarray, y_pred: np.ndarray, labels: list[str], *, columns: list[str], min_rows: int
) -> dict:
    """Per-group metrics and gaps for `frame`'s rows (`y_true`, `y_pred`: multi-hot boolean, columns in `labels` order)."""
    from sklearn.metrics import f1_score

    def micro(rows):
        return f1_score(y_true[rows], y_pred[rows], average="micro", zero_division=0)

    def macro(rows):
        return f1_score(y_true[rows], y_pred[rows], average="macro", zero_division=0)

    metrics = {
        "micro_f1": micro,
        "macro_f1": macro,
        "subset_accuracy": lambda rows: float((y_true[rows] == y_pred[rows]).all(axis=1).mean()),
        "mean_labels_predicted": lambda rows: float(y_pred[rows].sum(axis=1).mean()),
        "mean_labels_true": lambda rows: float(y_true[rows].sum(axis=1).mean()),
    }
    groups = metadata_groups(frame, columns)
    groups["text_length"] = length_groups(frame["text"])
    out = {
        name: summarise(name, by_group(metrics, group.to_numpy()), compared=COMPARED, min_rows=min_rows) for name, group in groups.items()
    }
    members = {label: y_true[:, j] for j, label in enumerate(labels)} | {NO_LABEL: ~y_true.any(axis=1)}
    out[PRESENCE] = summarise(PRESENCE, present_groups(metrics, members), compared=("micro_f1", "subset_accuracy"), min_rows=min_rows) | {
        "overlapping": True
    }
    return out
