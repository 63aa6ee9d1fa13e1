"""`data.augment`: edited copies of a task's training rows, added after splitting and recorded in the data report.

Used by training and by the planner (which must count the copies a run will train on).

The saved splits keep the original rows only (resume, evaluation, lineage and
`forget` read those); the copies are made again from them, deterministically,
whenever a run trains or resumes.
"""

from __future__ import annotations

import logging

from tuneforge.data.augment import augment_frame
from tuneforge.data.prepare import PreparedData
from tuneforge.errors import ConfigError

logger = logging.getLogger(__name__)


def check_augmentable(config, task) -> None:
    """A ConfigError before any work when the config asks to augment a task whose labels word edits would break."""
    if config.data.augment is not None and task.augment_refusal:
        raise ConfigError(f"invalid config:\n  data.augment: task {task.name} cannot be augmented: {task.augment_refusal}")
    if config.data.augment is not None and config.data.streaming:
        raise ConfigError(
            "invalid config:\n  data.augment: not with data.streaming (the copies would have to fit in memory); "
            "augmentation is for little data"
        )


def augment_training(data: PreparedData, config, task) -> PreparedData:
    """`data` with `augmented` rows made from its training split as `config.data.augment` says (unchanged when off)."""
    settings = config.data.augment
    if settings is None:
        return data
    check_augmentable(config, task)
    seed = config.train.seed if settings.seed is None else settings.seed
    table, source = None, None
    if settings.needs_neighbours:
        source = settings.embeddings or config.model.name
        table = _table(source, k=settings.neighbours, setting="data.augment.embeddings" if settings.embeddings else "model.name")
    added, by_operation = augment_frame(
        data.train, operations=settings.operations, probability=settings.probability, copies=settings.copies, seed=seed, table=table
    )
    data.augmented = added
    data.report["augmentation"] = {
        "operations": list(settings.operations),
        "probability": settings.probability,
        "copies": settings.copies,
        "seed": seed,
        "neighbours_from": source,
        "neighbours": settings.neighbours if source else None,
        "train_rows": len(data.train),
        "rows_added": len(added),
        "rows_added_by_operation": by_operation,
        "label_counts_added": task.label_counts(added) if len(added) else {},
    }
    logger.info("data.augment: %d training rows + %d edited copies %s", len(data.train), len(added), by_operation)
    return data


def _table(source: str, *, k: int, setting: str):
    from tuneforge.models.neighbours import neighbour_table
    from tuneforge.models.registry import resolve_model

    try:
        return neighbour_table(resolve_model(source), name=source, k=k)
    except ConfigError as exc:
        raise ConfigError(f"{setting} (the neighbours of data.augment insert/replace): {exc}") from None
