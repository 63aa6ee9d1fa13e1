"""Retrain a run's recipe without some rows (a deletion request): same config, same seed, same split assignment.

The new run trains on the old run's saved rows minus the named ones (matched by the
lineage hashes, so the rows are shaped as the model read them) and records `forgets`;
the old run records `superseded_by`.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from tuneforge.config import validate_config
from tuneforge.engine.run import train
from tuneforge.errors import DataError, RunError
from tuneforge.lineage import lineage_key, query_keys, row_hashes
from tuneforge.rundir import RunDir
from tuneforge.tasks import get_task


def forget(run_dir: str | Path, rows: pd.DataFrame):
    """Retrain `run_dir`'s recipe without `rows`; returns the new RunResult. The old run is marked superseded."""
    old = RunDir.open(run_dir)
    config = old.read_config()
    task = get_task(config.task)
    task.saved_split_columns()  # a task that cannot be retrained from its splits says so before any work
    key = lineage_key()
    drop = set(row_hashes(query_keys(old, rows), key))
    splits = old.splits()
    if not splits:
        raise RunError(f"{old.path}: its saved splits are missing; it cannot be retrained")
    kept, removed = {}, {}
    for name, frame in splits.items():
        hashes = row_hashes(task.row_keys(frame), key)
        keep = [h not in drop for h in hashes]
        kept[name], removed[name] = frame[keep], len(frame) - sum(keep)
    if not sum(removed.values()):
        raise DataError(f"none of the {len(rows)} row(s) were used by {old.path}; nothing to forget")
    staging = old.path.parent / f".forget-{old.name}"  # hidden: never listed as a run; removed whatever happens
    staging.mkdir(exist_ok=True)
    try:
        paths = {}
        for name, frame in kept.items():
            paths[name] = staging / f"{name}.jsonl"
            frame.drop(columns=["source"], errors="ignore").to_json(paths[name], orient="records", lines=True, force_ascii=False)
        raw = config.to_dict()
        raw["data"].update(task.saved_split_columns())
        raw["data"].update(
            train=str(paths["train"]),
            validation=str(paths["validation"]),
            test=str(paths["test"]) if "test" in paths else None,
            format="jsonl",
        )
        raw["output"].update(dir=str(old.path.parent), name=f"{old.name.rsplit('-', 2)[0]}-forget")
        result = train(validate_config(raw))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    new = RunDir(result.run_dir)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    new.update(forgets={"run": str(old.path), "rows_removed": removed, "at": stamp})
    old.update(superseded_by=str(new.path), superseded_at=stamp, superseded_reason=f"rows removed on request: {removed}")
    return result, removed
