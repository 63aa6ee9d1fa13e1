"""Data lineage of a recommend run: what identifies an interaction, lineage queries, and a retrain without some.

An interaction is identified by (user, item, time) — the time when the row has one,
so two events of the same pair at different times are different rows — after the
same id normalisation training applies (`1`, `"1"` and `1.0` are one id; dates become
unix seconds). A run records which of these fields its rows had (`row_identity` in
lineage.json); a query is keyed the same way, and refused when it lacks a field the
run's rows carry (a silent miss would tell a customer "no model saw you" wrongly).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from tuneforge.data.prepare import PreparedData
from tuneforge.errors import DataError, RunError

WITH_TIME = ["user", "item", "timestamp"]
WITHOUT_TIME = ["user", "item"]  # also what runs recorded before the identity was written down


def _time_key(t) -> str | None:
    if t is None or (isinstance(t, float) and math.isnan(t)):
        return None
    t = float(t)
    return str(int(t)) if t.is_integer() else repr(t)


def interaction_keys(frame: pd.DataFrame) -> list[str]:
    """`user<TAB>item`, plus `<TAB>time` when the row has a time: the hashed identity of each interaction."""
    times = frame["timestamp"] if "timestamp" in frame else [None] * len(frame)
    out = []
    for user, item, t in zip(frame["user"].astype(str), frame["item"].astype(str), times):
        stamp = _time_key(t)
        out.append(f"{user}\t{item}" if stamp is None else f"{user}\t{item}\t{stamp}")
    return out


def identity_of(frame: pd.DataFrame) -> list[str]:
    return WITH_TIME if "timestamp" in frame and frame["timestamp"].notna().any() else WITHOUT_TIME


def query_interactions(source: str, config, identity: list[str] | None) -> pd.DataFrame:
    """An interactions file read with the run's columns, keyed like the run's rows."""
    from tuneforge.tasks.recommend.data import read_interactions

    rc = config.recommend
    if not Path(source).is_file():
        raise RunError(
            f"{source!r} is not a file: a recommend run is searched by an interactions file "
            f"(columns {rc.user_column!r}, {rc.item_column!r}, {rc.time_column!r}) or by user id (--user)"
        )
    frame = read_interactions(source, rc, config.data.model_copy(update={"format": "auto"}))
    if "timestamp" not in (identity or WITHOUT_TIME):
        return frame.assign(timestamp=np.nan)  # the run's rows had no time: neither may the query
    if frame["timestamp"].isna().all():
        raise DataError(
            f"{source}: this run identifies an interaction by user, item and time, and column {rc.time_column!r} "
            "(recommend.time_column) is missing or empty; add the times, or name the users instead (runs --user, forget --users)"
        )
    return frame


def user_table_ids(config) -> list[str]:
    from tuneforge.tasks.recommend.data import read_side_table

    rc = config.recommend
    if not rc.users:
        return []
    return read_side_table(rc.users, rc.user_id_column, "recommend.user_id_column", config.data).frame.index.tolist()


def retrain_data(config, kept: dict[str, pd.DataFrame], *, users: set[str], staging: Path, report: dict):
    """The retrain's raw config and splits: the kept interactions as they are (no new split, so every other
    interaction keeps its split), and the user table without the forgotten users' rows. Item data stays."""
    raw = config.to_dict()
    removed = _write_user_table(config, users, staging, raw) if users else 0
    frame = pd.concat(kept.values())
    report = {
        **report,
        "users": int(frame["user"].nunique()),
        "items": int(frame["item"].nunique()),
        "interactions": len(frame),
        "splits": {name: {"rows": len(part), "origin": report.get("split")} for name, part in kept.items()},
        "forgotten": {"user_table_rows": removed},
    }
    for name, part in kept.items():
        if part.empty:
            raise DataError(f"without the forgotten interactions the {name} split is empty; nothing left to train or measure on")
    return raw, PreparedData(train=kept["train"], validation=kept["validation"], test=kept.get("test"), labels=[], report=report)


def _write_user_table(config, users: set[str], staging: Path, raw: dict) -> int:
    """The user table without `users`, in `staging` (in the format the run reads side tables in); its row count removed."""
    from tuneforge.tasks.recommend.data import read_side_table

    rc = config.recommend
    if not rc.users:
        return 0
    table = read_side_table(rc.users, rc.user_id_column, "recommend.user_id_column", config.data)
    gone = table.frame.index.isin(sorted(users))
    if not gone.any():
        return 0
    kept = table.frame[~gone].drop(columns=["source"], errors="ignore")
    kept.insert(0, rc.user_id_column, kept.index)
    fmt = config.data.format if config.data.format in ("jsonl", "parquet") else "csv"
    path = staging / f"users.{fmt}"
    if fmt == "jsonl":
        kept.to_json(path, orient="records", lines=True, force_ascii=False)
    elif fmt == "parquet":
        kept.to_parquet(path, index=False)
    else:
        kept.to_csv(path, index=False)
    raw["recommend"]["users"] = str(path)
    return int(gone.sum())
