"""Interactions and side tables: read, validate, make implicit feedback, report what was set aside.

An interactions file has one row per user-item event (a rating, a purchase, a
view) with optional rating and time columns; side tables describe items (text
and categorical columns the encoder reads) and users (segments). Every problem
names the file, line and column; rows are never dropped without a count in the
data report.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tuneforge.data.bundled import is_bundled, load_bundled
from tuneforge.data.read import iter_records
from tuneforge.errors import DataError

logger = logging.getLogger(__name__)
COLUMNS = ("user", "item", "rating", "timestamp", "source")


@dataclass
class SideTable:
    """A side table indexed by id (strings), its descriptive columns, and where each row came from."""

    frame: pd.DataFrame  # index: id; columns: the table's other columns
    origin: str

    def column_names(self) -> list[str]:
        return [c for c in self.frame.columns if c != "source"]


def _records(spec: str, id_column: str, id_setting: str, data) -> pd.DataFrame:
    if is_bundled(spec):
        frame = load_bundled(spec)
        if id_column not in frame.columns:
            raise DataError(f"{spec}: no column {id_column!r} ({id_setting}); columns: {', '.join(map(str, frame.columns))}")
        return frame.rename(columns={id_column: "text"})
    rows = list(
        iter_records(spec, text_column=id_column, label_column=None, fmt=data.format, encoding=data.encoding, text_setting=id_setting)
    )
    if not rows:
        raise DataError(f"{spec}: no rows")
    return pd.DataFrame.from_records(rows).drop(columns=["label"])


def _ids(values: pd.Series, sources: pd.Series, column: str, origin: str) -> pd.Series:
    """Ids as strings (1, "1" and 1.0 are one id); a missing id names its row."""
    missing = values.isna() | (values.astype(str).str.strip() == "")
    if missing.any():
        where = sources[missing].iloc[0]
        raise DataError(f"{where}: column {column!r} is empty ({int(missing.sum())} row(s) in {origin})")

    def as_id(v: Any) -> str:
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v).strip()

    return values.map(as_id)


def _numbers(values: pd.Series, sources: pd.Series, column: str, *, dates: bool = False) -> pd.Series:
    """A numeric (or, for time, date) column as floats; the first unreadable cell names its row."""
    out = pd.to_numeric(values, errors="coerce")
    if dates:
        unread = out.isna() & values.notna()
        if unread.any():  # ISO dates and times become unix seconds
            parsed = pd.to_datetime(values[unread], errors="coerce", utc=True)
            out[unread] = (parsed - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds()
    bad = out.isna() & values.notna() & (values.astype(str).str.strip() != "")
    if bad.any():
        first = bad.idxmax()
        kind = "a number or a date" if dates else "a number"
        raise DataError(f"{sources[first]}: column {column!r}: {str(values[first])[:40]!r} is not {kind} ({int(bad.sum())} row(s))")
    return out.astype(float)


def read_interactions(spec: str, rc, data) -> pd.DataFrame:
    """user, item (strings), rating, timestamp (floats, NaN when absent) and source, in file order."""
    raw = _records(spec, rc.user_column, "recommend.user_column", data)
    columns = [c for c in raw.columns if c not in ("text", "source")]
    if rc.item_column not in raw.columns:
        raise DataError(f"{spec}: no column {rc.item_column!r} (recommend.item_column); columns: {', '.join([rc.user_column, *columns])}")
    frame = pd.DataFrame({"source": raw["source"].astype(str)})
    frame["user"] = _ids(raw["text"], frame["source"], rc.user_column, spec)
    frame["item"] = _ids(raw[rc.item_column], frame["source"], rc.item_column, spec)
    for name, column, dates in (("rating", rc.rating_column, False), ("timestamp", rc.time_column, True)):
        present = column is not None and column in raw.columns
        frame[name] = _numbers(raw[column], frame["source"], column, dates=dates) if present else np.nan
    return frame[list(COLUMNS)].reset_index(drop=True)


def read_side_table(spec: str, id_column: str, setting: str, data) -> SideTable:
    raw = _records(spec, id_column, setting, data)
    ids = _ids(raw["text"], raw["source"].astype(str), id_column, spec)
    duplicated = ids.duplicated()
    if duplicated.any():
        raise DataError(f"{raw['source'][duplicated.idxmax()]}: id {ids[duplicated.idxmax()]!r} appears twice in {spec}")
    frame = raw.drop(columns=["text"]).set_axis(ids.tolist(), axis=0)
    return SideTable(frame=frame.astype(object).where(frame.notna(), None), origin=spec)


def implicit_feedback(frame: pd.DataFrame, threshold: float | None, report: dict) -> pd.DataFrame:
    """Positives only (rating >= threshold when one is set), one row per user-item pair (the latest)."""
    if threshold is not None:
        if frame["rating"].isna().all():
            raise DataError("recommend.positive_threshold is set but the interactions have no rating column (recommend.rating_column)")
        keep = frame["rating"] >= threshold
        report["below_threshold"] = int((~keep).sum())
        frame = frame[keep]
    before = len(frame)
    frame = order_by_time(frame).drop_duplicates(["user", "item"], keep="last")
    report["repeated_pairs"] = before - len(frame)
    return frame.reset_index(drop=True)


def order_by_time(frame: pd.DataFrame) -> pd.DataFrame:
    """Each user's history in time order. Ties (many ratings share a second) keep file order: the later line is later."""
    ordered = frame.assign(_line=np.arange(len(frame)))
    ordered = ordered.sort_values(["user", "timestamp", "_line"], kind="stable", na_position="first")
    return ordered.drop(columns=["_line"])
