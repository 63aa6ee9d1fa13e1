"""Cleaning that counts: every removed or changed row is tallied with where it came from.

Text goes through the run's transform list (`data/transforms.py`), the same one
`Predictor` replays at prediction time. Labels are parsed by the task (a string,
a list of labels, character spans); a missing one stops the run naming its row.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from tuneforge.data.transforms import apply_transforms, default_transforms, has_html
from tuneforge.errors import DataError

EXAMPLES_KEPT = 20
MISSING = object()  # what a task's label parser returns for an absent label


def normalize_text(text: str, *, strip_html: bool = True) -> str:
    """Strip tags and entities (optionally) and collapse runs of whitespace."""
    return apply_transforms(text, default_transforms(strip_html=strip_html))


@dataclass
class CleanReport:
    rows_read: int = 0
    blank_lines: int = 0
    removed: dict[str, int] = field(default_factory=lambda: {"empty_row": 0, "empty_text": 0, "duplicate": 0, "conflicting_label": 0})
    modified: dict[str, int] = field(default_factory=lambda: {"html_stripped": 0, "whitespace_normalized": 0})
    examples: dict[str, list[str]] = field(default_factory=dict)
    rows_kept: int = 0

    def note(self, reason: str, sources: list[str]) -> None:
        self.removed[reason] += len(sources)
        if sources:
            self.examples.setdefault(reason, []).extend(sources[: EXAMPLES_KEPT - len(self.examples.get(reason, []))])

    def to_dict(self) -> dict:
        return {
            "rows_read": self.rows_read,
            "blank_lines_skipped": self.blank_lines,
            "removed": dict(self.removed),
            "removed_total": sum(self.removed.values()),
            "modified": dict(self.modified),
            "rows_kept": self.rows_kept,
            "examples": self.examples,
        }


def plain_label(raw: Any, *, text: str, where: str) -> Any:
    """Single-label parsing: a label is a non-empty string (numbers are read as their text)."""
    if raw is None:
        return MISSING
    if isinstance(raw, (list, dict)):
        raise DataError(f"{where}: expected one label, got a {type(raw).__name__}; for several labels per text use task: multilabel")
    value = (raw if isinstance(raw, str) else str(raw)).strip()
    return value or MISSING


def clean_frame(
    frame: pd.DataFrame,
    *,
    label_column: str,
    text_column: str,
    transforms: Sequence[str] | None = None,
    strip_html: bool = True,
    dedupe: bool = True,
    empty_text: str = "error",
    blank_lines: int = 0,
    parse_label: Callable[..., Any] = plain_label,
) -> tuple[pd.DataFrame, CleanReport]:
    """Transform text, parse labels, drop empty rows and duplicates; raise on a row that is half there."""
    transforms = default_transforms(strip_html=strip_html) if transforms is None else list(transforms)
    report = CleanReport(rows_read=len(frame), blank_lines=blank_lines)
    plain = [t for t in transforms if not t.startswith("redact:")]
    redaction = [t for t in transforms if t.startswith("redact:")]  # last in a run's list (see prepare.run_transforms)
    if redaction:
        report.modified["pii_redacted"] = 0
    texts, labels, missing = [], [], []
    for raw_text, raw_label, source in zip(frame["text"].tolist(), frame["label"].tolist(), frame["source"].tolist()):
        text = raw_text if isinstance(raw_text, str) else ""
        shaped = apply_transforms(text, plain)
        cleaned = apply_transforms(shaped, redaction) if redaction else shaped
        if "strip_html" in transforms and has_html(text):
            report.modified["html_stripped"] += 1
        elif shaped != text:
            report.modified["whitespace_normalized"] += 1
        if cleaned != shaped:
            report.modified["pii_redacted"] += 1
        label = parse_label(raw_label, text=cleaned, where=f"{source}: column {label_column!r}")
        texts.append(cleaned)
        missing.append(label is MISSING)
        labels.append(None if label is MISSING else label)
    frame = frame.assign(text=texts, label=labels)

    no_text = frame["text"] == ""
    no_label = pd.Series(missing, index=frame.index)
    report.note("empty_row", frame.loc[no_text & no_label, "source"].tolist())
    missing_label = frame[no_label & ~no_text]
    if len(missing_label):
        first = missing_label.iloc[0]["source"]
        raise DataError(f"{first}: column {label_column!r} is empty ({len(missing_label)} row(s) without a label)")
    empty = frame[no_text & ~no_label]
    if len(empty) and empty_text == "error":
        raise DataError(
            f"{empty.iloc[0]['source']}: column {text_column!r} is empty after cleaning "
            f"({len(empty)} row(s)); fix the file or set data.empty_text=drop to remove and count them"
        )
    report.note("empty_text", empty["source"].tolist())
    frame = frame[~no_text & ~no_label]

    if dedupe and len(frame):
        key = frame["label"].map(lambda v: v if isinstance(v, str) else json.dumps(v, sort_keys=True))
        exact = pd.DataFrame({"text": frame["text"], "key": key}).duplicated(keep="first")
        report.note("duplicate", frame.loc[exact, "source"].tolist())
        frame = frame[~exact]
        conflicting = frame.duplicated(subset=["text"], keep="first")
        report.note("conflicting_label", frame.loc[conflicting, "source"].tolist())
        frame = frame[~conflicting]
    frame = frame.reset_index(drop=True)
    report.rows_kept = len(frame)
    return frame, report
