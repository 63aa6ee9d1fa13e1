"""Stratified, seeded splits with errors that say which label is too small."""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import train_test_split

from tuneforge.errors import DataError


def stratified_split(frame: pd.DataFrame, fraction: float, *, seed: int, what: str, origin: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split `fraction` of `frame` off, keeping label proportions; returns (rest, held_out)."""
    counts = frame["label"].value_counts()
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
    rest, held = train_test_split(frame, test_size=n_held, stratify=frame["label"], random_state=seed, shuffle=True)
    return rest.reset_index(drop=True), held.reset_index(drop=True)


def stratified_sample(frame: pd.DataFrame, n: int, *, seed: int) -> pd.DataFrame:
    """Keep `n` rows with label proportions preserved ; labels with too few rows may vanish."""
    if n >= len(frame):
        return frame
    _, kept = train_test_split(frame, test_size=n, stratify=frame["label"], random_state=seed, shuffle=True)
    return kept.reset_index(drop=True)
