"""Data larger than memory (`data.streaming: true`): one pass that reads, cleans, dedupes and splits in chunks.

Each chunk of the training file goes through the same reader and the same
`clean_frame` as an in-memory run (so errors name the same file and line),
then gets a keyed 64-bit hash per row (`rowhash.py`). Dedup keeps 10 bytes per
distinct text; the split of a row is a pure function of (seed, hash), so it
needs no rows in memory and the same text always lands in the same split
(stratified in expectation, see `rowhash.assign_splits`). Kept rows are
written straight to split files (JSONL, the format of `RUN/splits/`), staged
next to the runs and moved into the run folder when it exists. What stays in
memory: the dedup table, 8 bytes per kept row for `lineage.json`, label
counts, and one chunk.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from tuneforge.config import DataConfig
from tuneforge.data.bundled import is_bundled, load_bundled
from tuneforge.data.clean import EXAMPLES_KEPT, CleanReport, clean_frame
from tuneforge.data.prepare import SPLITS, redaction_counts, run_transforms
from tuneforge.data.read import read_chunks
from tuneforge.data.rowhash import SeenTexts, assign_splits, text_hashes
from tuneforge.errors import ConfigError, DataError, RunError

logger = logging.getLogger(__name__)
STREAMING_METHODS = ("tfidf", "head")


@dataclass
class StreamedData:
    """A streamed run's data: cleaned split files on disk, their counts and row hashes — never the rows."""

    files: dict[str, Path]  # split -> JSONL of cleaned rows (staged, then inside RUN/splits/)
    labels: list[str]
    report: dict
    transforms: list[str]
    chunk_rows: int
    hashes: dict[str, np.ndarray] = field(default_factory=dict)  # keyed row hashes per split, for lineage.json
    staging: Path | None = None
    streaming: ClassVar[bool] = True

    @property
    def validation(self) -> Path | None:
        return self.files.get("validation")

    @property
    def test(self) -> Path | None:
        return self.files.get("test")

    def rows(self, split: str) -> int:
        return int(self.report["splits"][split]["rows"])

    def chunks(self, split: str, *, chunk_rows: int | None = None) -> Iterator[pd.DataFrame]:
        return iter_split_chunks(self.files[split], chunk_rows or self.chunk_rows)

    def splits(self):
        raise RunError("a streamed run does not hold its splits in memory; read them with StreamedData.chunks(split)")

    def move_into(self, splits_dir: Path) -> None:
        """Move the staged split files into the run folder (same file system: a rename each)."""
        splits_dir.mkdir(parents=True, exist_ok=True)
        for split, path in list(self.files.items()):
            target = splits_dir / f"{split}.jsonl"
            path.replace(target)
            self.files[split] = target
        self.discard_staging()

    def discard_staging(self) -> None:
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None

    @classmethod
    def from_run(cls, splits_dir: Path, report: dict, *, chunk_rows: int) -> StreamedData:
        """A finished pass read back from a run folder (resume): the split files and the saved report."""
        files = {s: splits_dir / f"{s}.jsonl" for s in SPLITS if (splits_dir / f"{s}.jsonl").is_file()}
        return cls(files=files, labels=report["labels"], report=report, transforms=report.get("transforms", []), chunk_rows=chunk_rows)


def iter_split_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """A split file (JSONL of cleaned rows) in frames of at most `chunk_rows`."""
    batch: list[dict] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                batch.append(json.loads(line))
            if len(batch) >= chunk_rows:
                yield _split_frame(batch)
                batch = []
    if batch:
        yield _split_frame(batch)


def _split_frame(records: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records)
    for column in ("text", "source"):
        if column in frame:
            frame[column] = frame[column].astype(str)
    return frame


def check_streamable(data: DataConfig, task, method: str) -> None:
    problems = []
    if not getattr(task, "streamable", False):
        problems.append(f"data.streaming: task {task.name} trains in memory; streaming covers task classify")
    if method not in STREAMING_METHODS:
        problems.append(f"data.streaming: method {method} trains in memory; streaming covers methods {', '.join(STREAMING_METHODS)}")
    if data.max_rows:
        problems.append("data.max_rows: not available with data.streaming (take a sample of the file instead)")
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))


def prepare_streaming(data: DataConfig, *, seed: int, task, method: str, staging_parent: Path) -> StreamedData:
    """The streaming pass: split files staged under `staging_parent` (the runs folder), and the data report."""
    check_streamable(data, task, method)
    transforms = run_transforms(data, task)
    redacted_before = redaction_counts(transforms)
    staging_parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tuneforge-stream-", dir=staging_parent))
    try:
        streamed = _stream_all(data, seed=seed, task=task, transforms=transforms, staging=staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if data.redact:
        after = redaction_counts(transforms)
        streamed.report["redacted"] = {k: after.get(k, 0) - redacted_before.get(k, 0) for k in sorted(after)}
    return streamed


def _stream_all(data: DataConfig, *, seed: int, task, transforms: list[str], staging: Path) -> StreamedData:
    from tuneforge.data.rowhash import lineage_key

    key = lineage_key()
    given = {s: spec for s, spec in (("validation", data.validation), ("test", data.test)) if spec}
    fractions = {"test": 0.0, "validation": 0.0}
    if not given:
        fractions["test"] = data.test_fraction
    if "validation" not in given:
        fractions["validation"] = data.validation_fraction
    report: dict = {"seed": seed, "task": task.name, "transforms": transforms, "files": {}, "splits": {}}
    writer = _SplitWriter(staging)
    try:
        train_seen = SeenTexts()
        route = partial(assign_splits, seed=seed, test=fractions["test"], validation=fractions["validation"])
        pass_ = _FilePass(data, task, transforms, key, writer, seen=train_seen, route=route)
        report["files"]["train"] = pass_.run(data.train)
        labels = sorted(pass_.labels)
        task.check_trainable(labels, origin=data.train, label_column=data.label_column)
        held_only = [label for label in labels if not writer.counts["train"].get(label)]
        if held_only:
            raise DataError(
                f"{data.train}: label {held_only[0]!r} has {sum(writer.counts[s].get(held_only[0], 0) for s in SPLITS)} row(s), "
                "all of them in held-out splits (streamed splits are drawn per row); add rows or give data.validation / data.test files"
            )
        for split, spec in given.items():
            index = SPLITS.index(split)
            other = _FilePass(data, task, transforms, key, writer, seen=SeenTexts(), route=lambda h, i=index: np.full(len(h), i, np.int8))
            other.known, other.train_seen = set(labels), train_seen
            report["files"][split] = other.run(spec)
        report["streaming"] = {
            "chunk_rows": data.chunk_rows,
            "split_rule": "hash of (seed, row): stratified in expectation" if any(fractions.values()) else "files",
            "dedup_table_mb": round(train_seen.nbytes / 2**20, 2),
            "row_hash": "HMAC-SHA256 (lineage key), first 64 bits",
        }
    finally:
        writer.close()
    origins = {s: ("file" if s in given or s == "train" else "split from train") for s in SPLITS}
    for split in ("validation", "test", "train"):
        if writer.rows[split] or split in given or fractions.get(split):
            report["splits"][split] = {
                "rows": writer.rows[split],
                "origin": origins[split],
                "label_counts": dict(sorted(writer.counts[split].items())),
                "texts_also_in_train": writer.overlap[split],
            }
    if not writer.rows["validation"]:
        raise DataError(f"{data.train}: no row fell in the validation split; the file is too small to stream (train it in memory)")
    report["labels"] = labels
    report["columns"] = writer.columns
    files = {s: writer.paths[s] for s in SPLITS if s in report["splits"]}
    return StreamedData(
        files=files,
        labels=labels,
        report=report,
        transforms=transforms,
        chunk_rows=data.chunk_rows,
        hashes={s: writer.hash_array(s) for s in files},
        staging=staging,
    )


class _SplitWriter:
    """Appends cleaned rows to the staged split files; counts rows and labels, keeps row hashes."""

    def __init__(self, folder: Path):
        self.paths = {s: folder / f"{s}.jsonl" for s in SPLITS}
        self._handles = {s: self.paths[s].open("w", encoding="utf-8") for s in SPLITS}
        self.rows = dict.fromkeys(SPLITS, 0)
        self.counts: dict[str, Counter] = {s: Counter() for s in SPLITS}
        self.overlap = dict.fromkeys(SPLITS, 0)
        self.columns: list[str] = []
        self._hashes: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}

    def write(self, split: str, frame: pd.DataFrame, hashes: np.ndarray, task) -> None:
        fh = self._handles[split]
        for record in frame.to_dict(orient="records"):
            fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self.rows[split] += len(frame)
        self.counts[split].update(task.label_counts(frame))
        self._hashes[split].append(hashes)
        for column in frame.columns:
            if column not in ("text", "label", "source") and column not in self.columns:
                self.columns.append(column)

    def hash_array(self, split: str) -> np.ndarray:
        parts = self._hashes[split]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)

    def close(self) -> None:
        for fh in self._handles.values():
            fh.close()


class _FilePass:
    """One file through reader -> clean -> hash -> dedup -> split files, a chunk at a time."""

    def __init__(self, data: DataConfig, task, transforms, key: bytes, writer: _SplitWriter, *, seen: SeenTexts, route):
        self.data, self.task, self.transforms, self.key = data, task, transforms, key
        self.writer, self.seen, self.route = writer, seen, route
        self.labels: set[str] = set()
        self.known: set[str] | None = None  # a held-out file: labels must appear in training
        self.train_seen: SeenTexts | None = None
        self._pairs: set[tuple[int, int]] = set()  # (text hash, label code) of rows dropped as conflicting
        self._codes: dict[str, int] = {}

    def run(self, spec: str) -> dict:
        total = CleanReport()
        stats: dict = {"blank_lines": 0}
        for chunk in self._chunks(spec, stats):
            frame, part = clean_frame(
                chunk,
                text_column=self.data.text_column,
                label_column=self.data.label_column,
                transforms=self.transforms,
                dedupe=False,
                empty_text=self.data.empty_text,
                parse_label=partial(self.task.parse_label, data=self.data),
            )
            _merge_report(total, part)
            if frame.empty:
                continue
            hashes = text_hashes(frame["text"].tolist(), self.key)
            frame, hashes = self._dedupe(frame, hashes, total)
            if self.known is not None:
                self.task.check_labels(frame, sorted(self.known), label_column=self.data.label_column)
            self.labels.update(frame["label"].tolist())
            self._write(frame, hashes)
        total.blank_lines = stats["blank_lines"]
        total.rows_kept = total.rows_read - sum(total.removed.values())
        if not total.rows_kept:
            raise DataError(f"{spec}: no usable rows after cleaning ({total.to_dict()['removed']})")
        logger.info("%s: %d rows read, %d kept (streamed)", spec, total.rows_read, total.rows_kept)
        return {"source": spec, **total.to_dict()}

    def _chunks(self, spec: str, stats: dict) -> Iterator[pd.DataFrame]:
        if is_bundled(spec):  # small packaged sets: chunk the loaded table
            frame = load_bundled(spec)
            for start in range(0, len(frame), self.data.chunk_rows):
                yield frame.iloc[start : start + self.data.chunk_rows].reset_index(drop=True)
            return
        d = self.data
        yield from read_chunks(
            spec,
            text_column=d.text_column,
            label_column=d.label_column,
            fmt=d.format,
            encoding=d.encoding,
            chunk_rows=d.chunk_rows,
            stats=stats,
            text_setting="data.text_column",
        )

    def _dedupe(self, frame: pd.DataFrame, hashes: np.ndarray, report: CleanReport) -> tuple[pd.DataFrame, np.ndarray]:
        """The rules of `clean_frame`: a repeated (text, label) is a duplicate; a text seen under another label conflicts."""
        codes = np.array([self._codes.setdefault(label, len(self._codes)) for label in frame["label"]], dtype=np.int32)
        prior = self.seen.lookup(hashes)
        local: dict[int, int] = {}
        keep = np.zeros(len(frame), dtype=bool)
        reasons: list[str | None] = [None] * len(frame)
        for i, (h, c, p) in enumerate(zip(hashes.tolist(), codes.tolist(), prior.tolist())):
            first = p if p >= 0 else local.get(h)
            if first is None:
                local[h] = c
                keep[i] = True
            elif first == c or (h, c) in self._pairs:
                reasons[i] = "duplicate"
            else:
                self._pairs.add((h, c))
                reasons[i] = "conflicting_label"
        if local:
            new = np.fromiter(local.keys(), dtype=np.uint64, count=len(local))
            self.seen.add(new, np.fromiter(local.values(), dtype=np.int32, count=len(local)))
        if not self.data.dedupe:
            return frame, hashes
        sources = frame["source"].tolist()
        for reason in ("duplicate", "conflicting_label"):
            report.note(reason, [s for s, r in zip(sources, reasons) if r == reason])
        return frame[keep].reset_index(drop=True), hashes[keep]

    def _write(self, frame: pd.DataFrame, hashes: np.ndarray) -> None:
        where = self.route(hashes)
        also_in_train = self.train_seen.lookup(hashes) >= 0 if self.train_seen is not None else None
        for index, split in enumerate(SPLITS):
            mask = where == index
            if mask.any():
                self.writer.write(split, frame[mask], hashes[mask], self.task)
                if also_in_train is not None:
                    self.writer.overlap[split] += int(also_in_train[mask].sum())


def _merge_report(total: CleanReport, part: CleanReport) -> None:
    total.rows_read += part.rows_read
    for reason, n in part.removed.items():
        total.removed[reason] = total.removed.get(reason, 0) + n
        kept = total.examples.setdefault(reason, []) if part.examples.get(reason) else None
        if kept is not None:
            kept.extend(part.examples[reason][: EXAMPLES_KEPT - len(kept)])
    for reason, n in part.modified.items():
        total.modified[reason] = total.modified.get(reason, 0) + n
