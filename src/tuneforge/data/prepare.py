"""From the data section of a config to clean train/validation/test tables and a report."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd

from tuneforge.config import DataConfig
from tuneforge.data.bundled import is_bundled, load_bundled
from tuneforge.data.clean import clean_frame
from tuneforge.data.load import read_table
from tuneforge.data.split import stratified_sample, stratified_split
from tuneforge.errors import DataError

logger = logging.getLogger(__name__)
SPLITS = ("train", "validation", "test")


@dataclass
class PreparedData:
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame | None
    labels: list[str]
    report: dict[str, Any]

    def splits(self) -> dict[str, pd.DataFrame]:
        out = {"train": self.train, "validation": self.validation}
        if self.test is not None:
            out["test"] = self.test
        return out


def read_labeled(spec: str, data: DataConfig) -> tuple[pd.DataFrame, int]:
    if is_bundled(spec):
        return load_bundled(spec), 0
    return read_table(spec, text_column=data.text_column, label_column=data.label_column, fmt=data.format, encoding=data.encoding)


def _load_clean(spec: str, data: DataConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    frame, blank = read_labeled(spec, data)
    frame, report = clean_frame(
        frame,
        text_column=data.text_column,
        label_column=data.label_column,
        strip_html=data.strip_html,
        dedupe=data.dedupe,
        empty_text=data.empty_text,
        blank_lines=blank,
    )
    if frame.empty:
        raise DataError(f"{spec}: no usable rows after cleaning ({report.to_dict()['removed']})")
    logger.info("%s: %d rows read, %d kept", spec, report.rows_read, report.rows_kept)
    return frame, {"source": spec, **report.to_dict()}


def check_known_labels(frame: pd.DataFrame, labels: list[str], *, label_column: str) -> None:
    """Raise on the first row whose label never appears in training."""
    known = set(labels)
    unseen = frame[~frame["label"].isin(known)]
    if len(unseen):
        row = unseen.iloc[0]
        raise DataError(
            f"{row['source']}: column {label_column!r}: label {row['label']!r} never appears in the training data "
            f"(known: {', '.join(sorted(known))}; {len(unseen)} row(s) affected)"
        )


def prepare_data(data: DataConfig, *, seed: int) -> PreparedData:
    report: dict[str, Any] = {"seed": seed, "files": {}, "splits": {}}
    train, report["files"]["train"] = _load_clean(data.train, data)
    labels = sorted(train["label"].unique().tolist())
    if len(labels) < 2:
        raise DataError(f"{data.train}: column {data.label_column!r} has a single label {labels[0]!r}; classification needs at least 2")
    if data.max_rows and data.max_rows < len(train):
        train = stratified_sample(train, data.max_rows, seed=seed)
        report["subsampled_to"] = data.max_rows

    given = {"validation": data.validation, "test": data.test}
    frames: dict[str, pd.DataFrame | None] = {"validation": None, "test": None}
    for split, spec in given.items():
        if spec:
            frame, report["files"][split] = _load_clean(spec, data)
            check_known_labels(frame, labels, label_column=data.label_column)
            frames[split] = frame

    origin = {"train": "file"}
    if frames["validation"] is None and frames["test"] is None:
        train, frames["test"] = stratified_split(train, data.test_fraction, seed=seed, what="test", origin=data.train)
        origin["test"] = "split from train"
    if frames["validation"] is None:
        fraction = data.validation_fraction / (1 - (data.test_fraction if origin.get("test") else 0))
        train, frames["validation"] = stratified_split(train, fraction, seed=seed, what="validation", origin=data.train)
        origin["validation"] = "split from train"
    origin.setdefault("validation", "file")
    if frames["test"] is not None:
        origin.setdefault("test", "file")

    train_texts = set(train["text"])
    for split in ("validation", "test"):
        frame = frames[split]
        if frame is None:
            continue
        overlap = int(frame["text"].isin(train_texts).sum())
        if overlap:
            logger.warning("%d %s row(s) also appear in train: scores on %s will be optimistic", overlap, split, split)
        report["splits"][split] = _split_summary(frame, origin[split], overlap)
    report["splits"]["train"] = _split_summary(train, origin["train"], 0)
    report["labels"] = labels
    return PreparedData(train=train, validation=frames["validation"], test=frames["test"], labels=labels, report=report)


def _split_summary(frame: pd.DataFrame, origin: str, overlap: int) -> dict[str, Any]:
    counts = frame["label"].value_counts().sort_index()
    return {"rows": len(frame), "origin": origin, "label_counts": {k: int(v) for k, v in counts.items()}, "texts_also_in_train": overlap}
