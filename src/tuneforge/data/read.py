"""One reader for every data file, used by training, evaluation and file scoring alike.

Rows stream from CSV/TSV, JSONL, Parquet or CoNLL files as records that keep
every column of the file (ids, groups, metadata) plus `source`, the place in
the file ("file:line" or "file:row N") that errors and error analysis point at.
`read_table` collects them; `read_chunks` hands them out in bounded pieces so
files larger than memory can be scored, or trained on (`data/stream.py`).
"""

from __future__ import annotations

import codecs
import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from tuneforge.data.conll import bio_to_spans
from tuneforge.errors import DataError

CANONICAL = ("text", "label", "source")
FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".conll": "conll",
    ".bio": "conll",
}

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def detect_format(path: Path, declared: str = "auto") -> str:
    if declared != "auto":
        return declared
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"{path}: cannot tell the format from the extension {path.suffix!r}; use .csv, .jsonl, .parquet or .conll, or set data.format"
        )
    return fmt


def _missing_column(path: Path, column: str, available: list[str], setting: str) -> DataError:
    return DataError(f"{path}: column {column!r} not found (columns: {', '.join(map(str, available)) or 'none'}); set {setting}")


def _cell(value: Any) -> Any:
    """Missing values (None, NaN) become None, so validation can name their row."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value


def _record(row: dict[str, Any], text_column: str, label_column: str | None, source: str) -> dict[str, Any]:
    """Every column in file order, the text and label columns renamed `text` / `label`, plus `source`;
    another column named like one of ours keeps its value under an `input_` prefix."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key == text_column:
            out["text"] = _cell(value)
        elif key == label_column:
            out["label"] = _cell(value)
        else:
            out[f"input_{key}" if key in CANONICAL else str(key)] = _cell(value)
    out.setdefault("text", None)
    out.setdefault("label", None)
    out["source"] = source
    return out


def iter_records(
    path: str | Path,
    *,
    text_column: str = "text",
    label_column: str | None = "label",
    fmt: str = "auto",
    encoding: str = "utf-8",
    stats: dict | None = None,
    text_setting: str = "data.text_column",
) -> Iterator[dict[str, Any]]:
    """Rows of a data file as records; `stats["blank_lines"]` counts the blank lines skipped.

    `text_setting` is how error messages name the text-column setting (`--text-column` when scoring)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} is a folder, not a data file" if path.is_dir() else f"data file not found: {path}")
    kind = detect_format(path, fmt)
    stats = stats if stats is not None else {}
    stats.setdefault("blank_lines", 0)
    if kind == "parquet":
        yield from _parquet_records(path, text_column, label_column, text_setting)
        return
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise DataError(f"data.encoding: unknown encoding {encoding!r}") from None
    # utf-8-sig: a byte-order mark written by spreadsheet programs is not part of the first column's name
    encoding = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    readers = {"csv": _csv_records, "jsonl": _jsonl_records, "conll": _conll_records}
    yield from readers[kind](path, encoding, text_column, label_column, stats, text_setting)


def _decode_error(path: Path, line: int, encoding: str, exc: UnicodeDecodeError) -> DataError:
    """Where exactly the bad byte is: text readers decode ahead in blocks, so find it again in the raw bytes."""
    line, column, byte = _locate_bad_byte(path, encoding) or (line, None, exc.object[exc.start : exc.start + 1])
    where = f" at column {column}" if column else ""
    return DataError(
        f"{path}:{line}: byte {byte!r}{where} is not valid {encoding.replace('utf-8-sig', 'UTF-8')}; "
        f"re-save the file as UTF-8 or set the encoding (data.encoding, or --encoding), e.g. latin-1"
    )


def _locate_bad_byte(path: Path, encoding: str) -> tuple[int, int, bytes] | None:
    """(line, column, byte) of the first byte `encoding` cannot decode, reading in blocks (any file size)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    line, line_start, offset = 1, 0, 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                position = offset + exc.start
                before = block[: exc.start]
                newlines = before.count(b"\n")
                if newlines:
                    line, line_start = line + newlines, offset + before.rfind(b"\n") + 1
                return line, position - line_start + 1, block[exc.start : exc.start + 1]
            newlines = block.count(b"\n")
            if newlines:
                line, line_start = line + newlines, offset + block.rfind(b"\n") + 1
            offset += len(block)
    return None


def _csv_records(path: Path, encoding: str, text_column: str, label_column: str | None, stats: dict, text_setting: str) -> Iterator[dict]:
    dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
    with open(path, encoding=encoding, newline="") as fh:
        reader = csv.reader(fh, dialect=dialect)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{path}: the file is empty (expected a header line)") from None
        except csv.Error as exc:
            raise DataError(f"{path}:1: unreadable CSV header: {exc}") from None
        except UnicodeDecodeError as exc:
            raise _decode_error(path, 1, encoding, exc) from None
        header = [h.strip() for h in header]
        if text_column not in header:
            raise _missing_column(path, text_column, header, text_setting)
        if label_column is not None and label_column not in header:
            raise _missing_column(path, label_column, header, "data.label_column")
        start = reader.line_num + 1
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise DataError(f"{path}:{start}: unreadable CSV ({exc})") from None
            except UnicodeDecodeError as exc:
                raise _decode_error(path, reader.line_num + 1, encoding, exc) from None
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                stats["blank_lines"] += 1
            elif len(fields) > len(header):
                raise DataError(f"{path}:{start}: {len(fields)} fields but the header has {len(header)}; quote fields that contain commas")
            else:
                # a short row (fewer fields than the header) reads as missing values
                row = {name: fields[i] if i < len(fields) else None for i, name in enumerate(header)}
                yield _record(row, text_column, label_column, f"{path}:{start}")
            start = reader.line_num + 1


def _jsonl_records(path: Path, encoding: str, text_column: str, label_column: str | None, stats: dict, text_setting: str) -> Iterator[dict]:
    number = 0
    with open(path, encoding=encoding) as fh:
        try:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    stats["blank_lines"] += 1
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{number}: invalid JSON at column {exc.colno}: {exc.msg}") from None
                except RecursionError:
                    raise DataError(f"{path}:{number}: JSON nested too deeply") from None
                if not isinstance(obj, dict):
                    raise DataError(f"{path}:{number}: each line must be a JSON object, got {type(obj).__name__}")
                for column, setting in ((text_column, text_setting), (label_column, "data.label_column")):
                    if column is not None and column not in obj:
                        raise DataError(f"{path}:{number}: column {column!r} not found (keys: {', '.join(obj) or 'none'}); set {setting}")
                value = obj[text_column]
                if value is not None and not isinstance(value, str):
                    raise DataError(f"{path}:{number}: column {text_column!r} must be a string, got {type(value).__name__}")
                yield _record(obj, text_column, label_column, f"{path}:{number}")
        except UnicodeDecodeError as exc:
            raise _decode_error(path, number + 1, encoding, exc) from None


def _conll_records(path: Path, encoding: str, text_column: str, label_column: str | None, stats: dict, text_setting: str) -> Iterator[dict]:
    """Token-per-line files (first column the token, last the BIO tag), sentences separated by blank lines.

    Each sentence becomes one record: its tokens joined by single spaces, and the
    tags as character spans of that text (what the entities task reads).
    """
    tokens: list[str] = []
    tags: list[str] = []
    first = 0
    number = 0

    def flush() -> Iterator[dict]:
        if tokens:
            text, spans = bio_to_spans(tokens, tags, where=f"{path}:{first}")
            yield {"text": text, "label": spans, "source": f"{path}:{first}"}
        tokens.clear()
        tags.clear()

    with open(path, encoding=encoding) as fh:
        try:
            for number, line in enumerate(fh, start=1):
                parts = line.split()
                if not parts or parts[0] == "-DOCSTART-":
                    yield from flush()
                    continue
                if len(parts) < 2:
                    raise DataError(f"{path}:{number}: expected 'TOKEN ... TAG', got {line.strip()!r}")
                if not tokens:
                    first = number
                tokens.append(parts[0])
                tags.append(parts[-1])
        except UnicodeDecodeError as exc:
            raise _decode_error(path, number + 1, encoding, exc) from None
    yield from flush()


def _parquet_records(path: Path, text_column: str, label_column: str | None, text_setting: str) -> Iterator[dict]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
    names = parquet.schema_arrow.names
    for column, setting in ((text_column, text_setting), (label_column, "data.label_column")):
        if column is not None and column not in names:
            raise _missing_column(path, column, names, setting)
    row = 0
    for batch in parquet.iter_batches(batch_size=4096):
        for obj in batch.to_pylist():
            row += 1
            value = obj[text_column]
            if value is not None and not isinstance(value, str):
                raise DataError(f"{path}: row {row}: column {text_column!r} must be a string, got {type(value).__name__}")
            yield _record(obj, text_column, label_column, f"{path}:row {row}")


def read_table(
    path: str | Path,
    *,
    text_column: str = "text",
    label_column: str | None = "label",
    fmt: str = "auto",
    encoding: str = "utf-8",
) -> tuple[pd.DataFrame, int]:
    """Return (rows with text/label/source and every other column, number of blank lines skipped).

    `label_column=None` reads unlabeled text (for prediction). Missing values are
    kept as None so validation can name their line.
    """
    stats: dict = {}
    records = list(iter_records(path, text_column=text_column, label_column=label_column, fmt=fmt, encoding=encoding, stats=stats))
    return _frame(records), stats["blank_lines"]


def read_chunks(
    path: str | Path,
    *,
    text_column: str = "text",
    label_column: str | None = None,
    fmt: str = "auto",
    encoding: str = "utf-8",
    chunk_rows: int = 1024,
    stats: dict | None = None,
    text_setting: str = "--text-column",
) -> Iterator[pd.DataFrame]:
    """Rows in frames of at most `chunk_rows`, in file order (memory stays bounded); unlabeled unless `label_column` is given."""
    batch: list[dict] = []
    records = iter_records(
        path, text_column=text_column, label_column=label_column, fmt=fmt, encoding=encoding, stats=stats, text_setting=text_setting
    )
    for record in records:
        batch.append(record)
        if len(batch) >= chunk_rows:
            yield _frame(batch)
            batch = []
    if batch:
        yield _frame(batch)


def _frame(records: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=list(CANONICAL))
    return frame.astype(object).where(frame.notna(), None) if records else frame
