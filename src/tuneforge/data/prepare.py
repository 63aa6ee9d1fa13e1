"""From the data section of a config to clean train/validation/test tables and a report.

The task says how a label cell is read, which label set a model is built for,
and what splits are stratified on; everything else (reading, cleaning, seeded
splits, the report) is the same for every task. Columns other than text and
label (ids, groups, metadata) are kept through all of it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pandas as pd

from tuneforge.config import DataConfig
from tuneforge.data.bundled import is_bundled, load_bundled
from tuneforge.data.clean import clean_frame
from tuneforge.data.read import read_table
from tuneforge.data.split import stratified_sample, stratified_split
from tuneforge.data.transforms import default_transforms
from tuneforge.errors import ConfigError, DataError

logger = logging.getLogger(__name__)
SPLITS = ("train", "validation", "test")


@dataclass
class PreparedData:
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame | None
    labels: list[str]
    report: dict[str, Any]
    transforms: list[str] = field(default_factory=list)
    augmented: pd.DataFrame | None = None  # `data.augment` copies of training rows: trained on, never saved as a split

    def splits(self) -> dict[str, pd.DataFrame]:
        """The rows as read and split (what is saved, hashed for lineage and evaluated on)."""
        out = {"train": self.train, "validation": self.validation}
        if self.test is not None:
            out["test"] = self.test
        return out

    def training_frame(self) -> pd.DataFrame:
        """What a model learns from: the training split plus its augmented copies, if any."""
        if self.augmented is None or self.augmented.empty:
            return self.train
        return pd.concat([self.train, self.augmented], ignore_index=True)


def run_transforms(data: DataConfig, task) -> list[str]:
    """The ordered text transforms of a run; none when the task's outputs index the raw text (entity spans)."""
    if task.keeps_raw_text:
        if data.redact:
            raise ConfigError(f"data.redact: task {task.name} answers with offsets into the raw text, which redaction would change")
        return []
    transforms = default_transforms(strip_html=data.strip_html)
    if data.redact:
        from tuneforge.data.redact import transform_name

        transforms.append(transform_name(data.redact, data.redact_strategy))
    return transforms


def redaction_counts(transforms: list[str]) -> dict[str, int]:
    """Entities replaced so far in this process by the run's redaction transform (none: {})."""
    from tuneforge.data.redact import is_redaction, redactor

    return {k: v for name in transforms if is_redaction(name) for k, v in redactor(name).counts.items()}


def read_labeled(spec: str, data: DataConfig) -> tuple[pd.DataFrame, int]:
    if is_bundled(spec):
        return load_bundled(spec), 0
    return read_table(spec, text_column=data.text_column, label_column=data.label_column, fmt=data.format, encoding=data.encoding)


Reader = Callable[[str, DataConfig], tuple[pd.DataFrame, int]]  # (rows, blank lines skipped)


def load_clean(
    spec: str, data: DataConfig, task, transforms: list[str], *, read: Reader = read_labeled
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read one file (or bundled set) with `read` and clean it as the task and transforms say."""
    frame, blank = read(spec, data)
    frame, report = clean_frame(
        frame,
        text_column=data.text_column,
        label_column=data.label_column,
        transforms=transforms,
        dedupe=data.dedupe,
        empty_text=data.empty_text,
        blank_lines=blank,
        parse_label=partial(task.parse_label, data=data),
    )
    if frame.empty:
        raise DataError(f"{spec}: no usable rows after cleaning ({report.to_dict()['removed']})")
    logger.info("%s: %d rows read, %d kept", spec, report.rows_read, report.rows_kept)
    return frame, {"source": spec, **report.to_dict()}


def prepare_data(data: DataConfig, *, seed: int, task, read: Reader = read_labeled) -> PreparedData:
    """`task` (a tuneforge.tasks Task) says how labels are read, which labels exist and what splits keep balanced;
    `read` turns a data spec into rows (labeled tables by default; raw text corpora for pre-training)."""
    transforms = run_transforms(data, task)
    redacted_before = redaction_counts(transforms)
    report: dict[str, Any] = {"seed": seed, "task": task.name, "transforms": transforms, "files": {}, "splits": {}}
    train, report["files"]["train"] = load_clean(data.train, data, task, transforms, read=read)
    labels = task.label_names(train)
    task.check_trainable(labels, origin=data.train, label_column=data.label_column)
    if data.max_rows and data.max_rows < len(train):
        train = stratified_sample(train, data.max_rows, seed=seed, key=task.split_key(train))
        report["subsampled_to"] = data.max_rows

    given = {"validation": data.validation, "test": data.test}
    frames: dict[str, pd.DataFrame | None] = {"validation": None, "test": None}
    for split, spec in given.items():
        if spec:
            frame, report["files"][split] = load_clean(spec, data, task, transforms, read=read)
            task.check_labels(frame, labels, label_column=data.label_column)
            frames[split] = frame

    origin = {"train": "file"}
    if frames["validation"] is None and frames["test"] is None:
        train, frames["test"] = stratified_split(
            train, data.test_fraction, seed=seed, what="test", origin=data.train, key=task.split_key(train)
        )
        origin["test"] = "split from train"
    if frames["validation"] is None:
        fraction = data.validation_fraction / (1 - (data.test_fraction if origin.get("test") else 0))
        train, frames["validation"] = stratified_split(
            train, fraction, seed=seed, what="validation", origin=data.train, key=task.split_key(train)
        )
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
        report["splits"][split] = _split_summary(frame, origin[split], overlap, task)
    report["splits"]["train"] = _split_summary(train, origin["train"], 0, task)
    report["labels"] = labels
    if data.redact:  # which entities were replaced, and how often: what a privacy review asks first
        after = redaction_counts(transforms)
        report["redacted"] = {k: after.get(k, 0) - redacted_before.get(k, 0) for k in sorted(after)}
    report["columns"] = [c for c in train.columns if c not in ("text", "label", "source")]
    return PreparedData(
        train=train, validation=frames["validation"], test=frames["test"], labels=labels, report=report, transforms=transforms
    )


def _split_summary(frame: pd.DataFrame, origin: str, overlap: int, task) -> dict[str, Any]:
    return {"rows": len(frame), "origin": origin, "label_counts": task.label_counts(frame), "texts_also_in_train": overlap}
