"""Cleaning that counts: every removed or changed row is tallied with where it came from.

The same `normalize_text` runs at prediction time, so a served model sees text
shaped exactly like its training data.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

import pandas as pd

from tuneforge.errors import DataError

_BLOCKS = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.I | re.S)
_TAGS = re.compile(r"<!--.*?-->|</?[A-Za-z][^<>]*>", re.S)
_ENTITY = re.compile(r"&(#\d+|#x[0-9a-fA-F]+|[A-Za-z]+);")
_SPACE = re.compile(r"\s+")
EXAMPLES_KEPT = 20


def has_html(text: str) -> bool:
    return bool(_TAGS.search(text) or _ENTITY.search(text))


def normalize_text(text: str, *, strip_html: bool = True) -> str:
    """Strip tags and entities (optionally) and collapse runs of whitespace."""
    if strip_html and has_html(text):
        text = html.unescape(_TAGS.sub(" ", _BLOCKS.sub(" ", text)))
    return _SPACE.sub(" ", text).strip()


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


def clean_frame(
    frame: pd.DataFrame,
    *,
    label_column: str,
    text_column: str,
    strip_html: bool = True,
    dedupe: bool = True,
    empty_text: str = "error",
    blank_lines: int = 0,
) -> tuple[pd.DataFrame, CleanReport]:
    """Normalise text, drop empty rows and duplicates; raise on a row that is half there."""
    report = CleanReport(rows_read=len(frame), blank_lines=blank_lines)
    texts, labels = [], []
    for raw_text, raw_label in zip(frame["text"].tolist(), frame["label"].tolist()):
        text = "" if raw_text is None else raw_text
        cleaned = normalize_text(text, strip_html=strip_html)
        if strip_html and has_html(text):
            report.modified["html_stripped"] += 1
        elif cleaned != text:
            report.modified["whitespace_normalized"] += 1
        texts.append(cleaned)
        labels.append(None if raw_label is None else raw_label.strip())
    frame = frame.assign(text=texts, label=labels)

    no_text = frame["text"] == ""
    no_label = frame["label"].isna() | (frame["label"] == "")
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

    if dedupe:
        exact = frame.duplicated(subset=["text", "label"], keep="first")
        report.note("duplicate", frame.loc[exact, "source"].tolist())
        frame = frame[~exact]
        conflicting = frame.duplicated(subset=["text"], keep="first")
        report.note("conflicting_label", frame.loc[conflicting, "source"].tolist())
        frame = frame[~conflicting]
    frame = frame.reset_index(drop=True)
    report.rows_kept = len(frame)
    return frame, report
