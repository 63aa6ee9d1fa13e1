"""Fairness slices of an entity model: entity-level micro precision / recall / F1 per group of texts.

Groupings: each `evaluate.slices` metadata column, sentence length (quartiles of
words), and entity type — one group per type holding the texts that truly contain
an entity of it, plus "(none)" for texts without entities (these groups overlap).
Scores within a group count every entity of its texts (all types), so a gap by
type says "texts with a DATE are read worse", not only "DATEs are missed" (that is
the per-type table).
"""

from __future__ import annotations

import pandas as pd

from tuneforge.tasks.entities.metrics import entity_metrics
from tuneforge.tasks.slicing import by_group, length_groups, metadata_groups, present_groups, summarise

TYPES = "entity_type"
NO_ENTITY = "(none)"
SHOWN = ("precision", "recall", "f1", "entities_true")  # what the report shows per group


def slice_metrics(
    frame: pd.DataFrame, gold: list[list[dict]], predicted: list[list[dict]], types: list[str], *, columns: list[str], min_rows: int
) -> dict:
    """Per-group entity scores and gaps for `frame`'s rows (`gold` and `predicted`: spans per row)."""
    cache: dict[bytes, dict] = {}

    def scores(rows) -> dict:
        key = rows.tobytes()
        if key not in cache:
            cache[key] = entity_metrics([gold[i] for i in rows], [predicted[i] for i in rows], types)
        return cache[key]

    metrics = {
        "precision": lambda rows: scores(rows)["micro_precision"],
        "recall": lambda rows: scores(rows)["micro_recall"],
        "f1": lambda rows: scores(rows)["micro_f1"],
        "entities_true": lambda rows: scores(rows)["entities_true"],
    }
    groups = metadata_groups(frame, columns)
    groups["text_length"] = length_groups(frame["text"], unit="words")
    compared = ("precision", "recall", "f1")
    out = {
        name: summarise(name, by_group(metrics, group.to_numpy()), compared=compared, min_rows=min_rows, counts=("entities_true",))
        for name, group in groups.items()
    }
    present = [{s["label"] for s in spans} for spans in gold]
    members = {t: pd.Series([t in p for p in present]).to_numpy() for t in types}
    members[NO_ENTITY] = pd.Series([not p for p in present]).to_numpy()
    out[TYPES] = summarise(TYPES, present_groups(metrics, members), compared=compared, min_rows=min_rows, counts=("entities_true",)) | {
        "overlapping": True
    }
    return out
