"""What every task's fairness slices share: how rows are grouped, how a grouping is summarised, how the card says it.

A task computes its own per-group metrics (classify: accuracy and calibration;
multilabel: micro / macro F1 and subset accuracy; entities: entity P/R/F1) through
`fairlearn`'s `MetricFrame`; this module turns a table of them into the one
`slices.json` schema — `{grouping: {"groups": {value: {"n", <metrics>, "small"}},
"largest_gap": {metric: gap}, "judged_groups": k}}` — with groups under `min_rows`
listed, flagged and left out of the gaps (a difference there cannot be told from noise).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from tuneforge.errors import DataError

logger = logging.getLogger(__name__)
LENGTH = "text_length"


def length_groups(texts: pd.Series, *, unit: str = "chars") -> pd.Series:
    """Quartiles of length in characters (`chars`) or words (`words`), named by their bounds ("31-58 chars")."""
    lengths = texts.str.len() if unit == "chars" else texts.str.split().str.len()
    edges = np.unique(np.quantile(lengths, [0, 0.25, 0.5, 0.75, 1.0]).round()) if len(texts) else np.zeros(1)
    if len(edges) < 2:
        return pd.Series([f"{int(edges[0])} {unit}"] * len(texts), index=texts.index, dtype=object)
    bins = pd.cut(lengths, edges, include_lowest=True, duplicates="drop")
    return bins.map(lambda b: f"{int(np.ceil(b.left))}-{int(b.right)} {unit}").astype(str)


def metadata_groups(frame: pd.DataFrame, columns: Sequence[str]) -> dict[str, pd.Series]:
    """One grouping per `evaluate.slices` column; a missing cell is its own group, an unknown column a DataError."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        known = [c for c in frame.columns if c not in ("text", "label", "source")]
        raise DataError(
            f"evaluate.slices: no column {missing[0]!r} in the evaluated rows; columns kept from the data: {', '.join(known) or 'none'}"
        )
    return {c: frame[c].map(lambda v: "missing" if v is None or v != v else str(v)) for c in columns}


def by_group(metrics: dict[str, Callable[[np.ndarray], float]], group: pd.Series | np.ndarray) -> pd.DataFrame:
    """`MetricFrame` per group, for metrics of the group's row numbers (targets of any shape: label sets, span lists)."""
    from fairlearn.metrics import MetricFrame

    rows = np.arange(len(group))
    wrapped = {"n": lambda t, p: len(t), **{k: (lambda t, p, f=f: f(np.asarray(p))) for k, f in metrics.items()}}
    return MetricFrame(metrics=wrapped, y_true=rows, y_pred=rows, sensitive_features=np.asarray(group)).by_group


def present_groups(metrics: dict[str, Callable[[np.ndarray], float]], members: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per-group metrics for groups that may overlap (rows holding label X, rows holding entity type Y): one
    `MetricFrame` per group (member or not), keeping the members' row."""
    tables = {}
    for name, mask in members.items():
        table = by_group(metrics, np.where(mask, "in", "out"))
        if "in" in table.index:
            tables[name] = table.loc["in"]
    columns = ["n", *metrics]
    return pd.DataFrame.from_dict(tables, orient="index", columns=columns) if tables else pd.DataFrame(columns=columns)


def summarise(name: str, table: pd.DataFrame, *, compared: Sequence[str], min_rows: int, counts: Sequence[str] = ()) -> dict:
    """The slices.json entry of one grouping: groups (rounded, small ones flagged), gaps between judged groups."""
    whole = {"n", *counts}
    per_group = {
        str(value): {k: (int(v) if k in whole else round(float(v), 4)) for k, v in row.items()} | {"small": int(row["n"]) < min_rows}
        for value, row in table.iterrows()
    }
    judged = table[table["n"] >= min_rows]
    gaps = {k: round(float(judged[k].max() - judged[k].min()), 4) for k in compared} if len(judged) > 1 else {}
    small = [v for v, g in per_group.items() if g["small"]]
    if small:
        logger.warning(
            "slices by %s: %d group(s) under %d rows are too small to judge: %s", name, len(small), min_rows, ", ".join(small[:5])
        )
    return {"groups": per_group, "largest_gap": gaps, "judged_groups": len(judged)}


def card_lines(slices: dict, *, metric: str, title: str) -> list[str]:
    """One line per grouping: `metric` (called `title`) in the worst and best judged group, and the gap."""
    lines = []
    for name, entry in slices.items():
        judged = {v: g for v, g in entry["groups"].items() if not g["small"] and metric in g}
        if len(judged) < 2 or metric not in entry.get("largest_gap", {}):
            continue
        best = max(judged, key=lambda v: judged[v][metric])
        worst = min(judged, key=lambda v: judged[v][metric])
        small = len(entry["groups"]) - len(judged)
        lines.append(
            f"- By {name}: {title} {judged[worst][metric]:.3f} ({worst}, n={judged[worst]['n']}) to {judged[best][metric]:.3f} "
            f"({best}, n={judged[best]['n']}), gap {entry['largest_gap'][metric]:.3f}"
            + (f"; {small} group(s) too small to judge" if small else "")
        )
    return lines


def card_section(slices: dict, *, metric: str, title: str) -> str:
    """The model card's "Slices" section (empty when nothing was sliced)."""
    if not slices:
        return ""
    lines = card_lines(slices, metric=metric, title=title) or [
        "- No grouping has two groups of at least `evaluate.min_slice_rows` rows: too few to compare (see eval/slices.json)."
    ]
    return "## Slices (eval/slices.json)\n" + "\n".join(lines) + "\n\n"
