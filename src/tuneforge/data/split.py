"""Seeded splits, stratified on a key the task chooses, with errors that say which label is too small."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from tuneforge.errors import DataError


def stratified_split(
    frame: pd.DataFrame, fraction: float, *, seed: int, what: str, origin: str, key: pd.Series | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split `fraction` of `frame` off, keeping the proportions of `key` (the task's stratification key,
    e.g. the label); returns (rest, held_out). Without a key the split is plain seeded random.
    """
    if key is None:
        n_held = max(1, int(round(len(frame) * fraction)))
        if n_held >= len(frame):
            raise DataError(f"{origin}: {len(frame)} rows are too few to hold out a {what} split")
        rest, held = train_test_split(frame, test_size=n_held, random_state=seed, shuffle=True)
        return rest.reset_index(drop=True), held.reset_index(drop=True)
    counts = key.value_counts()
    small = counts[counts < 2]
    if len(small):
        label, n = small.index[0], int(small.iloc[0])
        raise DataError(
            f"{origin}: label {label!r} has only {n} row(s); a stratified {what} split needs at least 2 per label "
            f"(add rows or provide data.{what} as a file)"
        )
    n_held = max(int(round(len(frame) * fraction)), len(counts))
    if n_held >= len(frame) - len(counts) + 1:
        raise DataError(f"{origin}: {len(frame)} rows are too few to hold out a {what} split for {len(counts)} labels")
    rest, held = train_test_split(frame, test_size=n_held, stratify=key, random_state=seed, shuffle=True)
    return rest.reset_index(drop=True), held.reset_index(drop=True)


def stratified_sample(frame: pd.DataFrame, n: int, *, seed: int, key: pd.Series | None = None) -> pd.DataFrame:
    """Keep `n` rows with the proportions of `key` preserved (plain random sample without one)."""
    if n >= len(frame):
        return frame
    _, kept = train_test_split(frame, test_size=n, stratify=key, random_state=seed, shuffle=True)
    return kept.reset_index(drop=True)


def data_name(spec: str) -> str:
    """A short name for a data source, used in run and study names."""
    return spec.split(":", 1)[1] if spec.startswith("bundled:") else Path(spec).stem
