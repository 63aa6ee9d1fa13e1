"""Read labeled text from CSV, JSONL or Parquet into one table shape.

Every row keeps `source` ("file:line" or "file:row N") so that validation and
error analysis can point at the exact place in the user's file.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import pandas as pd

from tuneforge.errors import DataError

COLUMNS = ["text", "label", "source"]
FORMATS = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def detect_format(path: Path, declared: str = "auto") -> str:
    if declared != "auto":
        return declared
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"{path}: cannot tell the format from the extension {path.suffix!r}; use .csv, .jsonl or .parquet, or set data.format"
        )
    return fmt


def read_table(
    path: str | Path,
    *,
    text_column: str = "text",
    label_column: str | None = "label",
    fmt: str = "auto",
    encoding: str = "utf-8",
) -> tuple[pd.DataFrame, int]:
    """Return (rows with columns text/label/source, number of blank lines skipped).

    `label_column=None` reads unlabeled text (for prediction). A missing label
    value is kept as None so validation can name its line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    kind = detect_format(path, fmt)
    if kind == "parquet":
        return _read_parquet(path, text_column, label_column), 0
    text = _decode(path, encoding)
    if kind == "csv":
        return _read_csv(path, text, text_column, label_column)
    return _read_jsonl(path, text, text_column, label_column)


def _decode(path: Path, encoding: str) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DataError(
            f"{path}:{line}: byte {raw[exc.start : exc.start + 1]!r} at column {col} is not valid {encoding}; "
            f"re-save the file as UTF-8 or set data.encoding (e.g. latin-1)"
        ) from None
    except LookupError:
        raise DataError(f"data.encoding: unknown encoding {encoding!r}") from None


def _missing_column(path: Path, column: str, available: list[str], setting: str) -> DataError:
    return DataError(f"{path}: column {column!r} not found (columns: {', '.join(map(str, available)) or 'none'}); set {setting}")


def _cell(value) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value if isinstance(value, str) else str(value)


def _field(fields: list[str], position: int) -> str | None:
    """A short row (fewer fields than the header) reads as missing values."""
    return fields[position] if position < len(fields) else None


def _read_csv(path: Path, text: str, text_column: str, label_column: str | None) -> tuple[pd.DataFrame, int]:
    dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect=dialect)
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(f"{path}: the file is empty (expected a header line)") from None
    except csv.Error as exc:
        raise DataError(f"{path}:1: unreadable CSV header: {exc}") from None
    header = [h.strip() for h in header]
    index = {name: i for i, name in enumerate(header)}
    if text_column not in index:
        raise _missing_column(path, text_column, header, "data.text_column")
    if label_column is not None and label_column not in index:
        raise _missing_column(path, label_column, header, "data.label_column")
    rows, blank, start = [], 0, reader.line_num + 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise DataError(f"{path}:{start}: unreadable CSV ({exc})") from None
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            blank += 1
        elif len(fields) > len(header):
            raise DataError(f"{path}:{start}: {len(fields)} fields but the header has {len(header)}; quote fields that contain commas")
        else:
            text_value = _field(fields, index[text_column])
            label_value = _field(fields, index[label_column]) if label_column else None
            rows.append((text_value, label_value, f"{path}:{start}"))
        start = reader.line_num + 1
    return pd.DataFrame(rows, columns=COLUMNS), blank


def _read_jsonl(path: Path, text: str, text_column: str, label_column: str | None) -> tuple[pd.DataFrame, int]:
    rows, blank = [], 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            blank += 1
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{number}: invalid JSON at column {exc.colno}: {exc.msg}") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{number}: each line must be a JSON object, got {type(obj).__name__}")
        if text_column not in obj:
            raise DataError(f"{path}:{number}: column {text_column!r} not found (keys: {', '.join(obj) or 'none'}); set data.text_column")
        if label_column is not None and label_column not in obj:
            raise DataError(f"{path}:{number}: column {label_column!r} not found (keys: {', '.join(obj) or 'none'}); set data.label_column")
        value = obj[text_column]
        if value is not None and not isinstance(value, str):
            raise DataError(f"{path}:{number}: column {text_column!r} must be a string, got {type(value).__name__}")
        rows.append((value, _cell(obj[label_column]) if label_column else None, f"{path}:{number}"))
    return pd.DataFrame(rows, columns=COLUMNS), blank


def _read_parquet(path: Path, text_column: str, label_column: str | None) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        schema_names = pq.read_schema(path).names
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
    for column, setting in ((text_column, "data.text_column"), (label_column, "data.label_column")):
        if column is not None and column not in schema_names:
            raise _missing_column(path, column, schema_names, setting)
    columns = [text_column] + ([label_column] if label_column else [])
    frame = pq.read_table(path, columns=columns).to_pandas()
    texts = frame[text_column].tolist()
    bad = next((i for i, v in enumerate(texts) if v is not None and not isinstance(v, str)), None)
    if bad is not None:
        raise DataError(f"{path}: row {bad + 1}: column {text_column!r} must be a string, got {type(texts[bad]).__name__}")
    labels = [_cell(v) for v in frame[label_column].tolist()] if label_column else [None] * len(texts)
    sources = [f"{path}:row {i + 1}" for i in range(len(texts))]
    return pd.DataFrame({"text": texts, "label": labels, "source": sources}, columns=COLUMNS)
