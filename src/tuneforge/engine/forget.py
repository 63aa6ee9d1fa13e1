"""Retrain a run's recipe without some rows or users (a deletion request): same config, same seed, same splits.

The new run trains on the old run's saved rows minus the named ones (matched by the
lineage hashes, so the rows are shaped as the model read them) and records `forgets`
(counts only, never the rows or ids); the old run records `superseded_by`. How the
kept rows become a retrain is the task's `retrain_without` hook: text tasks read them
back from files, recommend takes them as they are and drops forgotten users from its
user table too.
"""

from __future__ import annotations

import logging
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from tuneforge.config import validate_config
from tuneforge.engine.run import train
from tuneforge.errors import ConfigError, DataError, RunError
from tuneforge.lineage import checked_lineage, lineage_key, query_keys, row_hashes, user_hashes
from tuneforge.rundir import RunDir
from tuneforge.tasks import get_task

logger = logging.getLogger(__name__)


def forget(run_dir: str | Path, rows: pd.DataFrame | None = None, *, users: list[str] | None = None):
    """Retrain `run_dir`'s recipe without `rows` and every row of `users`; returns (RunResult, rows removed per split).

    The old run is marked superseded."""
    old = RunDir.open(run_dir)
    config = old.read_config()
    task = get_task(config.task)
    task.saved_split_columns()  # a task that cannot be retrained from its splits says so before any work
    if users and task.user_column is None:
        raise ConfigError(f"forget --users: the rows of a {task.name} run name no user; give the rows themselves with --rows")
    if rows is None and not users:
        raise ConfigError("forget: name the rows (--rows) or the users (--users) to forget")
    key = lineage_key()
    drop = set(row_hashes(query_keys(old, rows), key)) if rows is not None else set()
    users = sorted({str(u).strip() for u in users or []})
    known_users = _known_users(old, users, key)
    splits = old.splits()
    if not splits:
        raise RunError(f"{old.path}: its saved splits are missing; it cannot be retrained")
    kept, removed = {}, {}
    for name, frame in splits.items():
        keep = [h not in drop for h in row_hashes(task.row_keys(frame), key)]
        if known_users:
            keep = [k and u not in known_users for k, u in zip(keep, frame[task.user_column].astype(str))]
        kept[name], removed[name] = frame[keep], len(frame) - sum(keep)
    if not sum(removed.values()) and not known_users:  # (users none of whom the run knew were refused above)
        raise DataError(f"none of the {len(rows)} row(s) were used by {old.path}; nothing to forget")
    staging = old.path.parent / f".forget-{old.name}"  # hidden: never listed as a run; removed whatever happens
    staging.mkdir(exist_ok=True)
    try:
        raw, data = task.retrain_without(config, kept, users=known_users, staging=staging, report=old.read_data_report())
        raw["output"].update(dir=str(old.path.parent), name=f"{old.name.rsplit('-', 2)[0]}-forget")
        result = train(validate_config(raw), data=data)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    new = RunDir(result.run_dir)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record = {"run": str(old.path), "rows_removed": removed, "at": stamp}
    if users:
        record.update(users_forgotten=len(known_users), users_not_found=len(users) - len(known_users))
        record.update((data.report.get("forgotten") or {}) if data is not None else {})
    new.update(forgets=record)
    reason = f"rows removed on request: {removed}" + (f"; {len(known_users)} user(s) forgotten" if users else "")
    old.update(superseded_by=str(new.path), superseded_at=stamp, superseded_reason=reason)
    return result, removed


def _known_users(run: RunDir, users: list[str], key: bytes) -> set[str]:
    """The ids among `users` the run's lineage holds (in a split or its user table); a clear error when none is."""
    if not users:
        return set()
    lineage = checked_lineage(run)
    if "users" not in lineage:
        raise RunError(f"{run.path}: its lineage was written before user ids were hashed; forget its interactions with --rows")
    held = set().union(*lineage["users"].values())
    known = {u for u in users if user_hashes([u], key)[0] in held}
    if not known:
        raise DataError(f"{_users_phrase(users)} not known to {run.path} (in no split and not in its user table); nothing to forget")
    if len(known) < len(users):
        logger.warning("%d of the %d user(s) are not known to %s; forgetting the others", len(users) - len(known), len(users), run.path)
    return known


def _users_phrase(users: list[str]) -> str:
    if not users:
        return ""
    shown = ", ".join(repr(u) for u in users[:3]) + (f" and {len(users) - 3} more" if len(users) > 3 else "")
    return f"user(s) {shown}"
