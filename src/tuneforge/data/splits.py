"""The exact rows of each split, kept in a run as `splits/<split>.jsonl`.

Resume, on-demand evaluation, compression and benchmarks all read them back
through `read_split`, so the file format lives in one place.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tuneforge.runs import atomic_file

SPLIT_COLUMNS = ["text", "label", "source"]


def split_path(run_dir: Path, split: str) -> Path:
    return Path(run_dir) / "splits" / f"{split}.jsonl"


def write_split(run_dir: Path, split: str, frame: pd.DataFrame) -> None:
    with atomic_file(split_path(run_dir, split), "w", encoding="utf-8") as fh:
        frame[SPLIT_COLUMNS].to_json(fh, orient="records", lines=True, force_ascii=False)


def read_split(run_dir: Path, split: str) -> pd.DataFrame | None:
    """The saved rows of `split`, or None when the run has no such split."""
    path = split_path(run_dir, split)
    if not path.is_file():
        return None
    return pd.read_json(path, lines=True, dtype={c: str for c in SPLIT_COLUMNS}, convert_dates=False)


def data_name(spec: str) -> str:
    """A short name for a data source, used in run and study names."""
    return spec.split(":", 1)[1] if spec.startswith("bundled:") else Path(spec).stem
