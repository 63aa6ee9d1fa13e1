"""Raw text for pre-training: a text column of a table, the lines of a .txt file, or a folder of documents.

Every document becomes one row (`text`, `label` None, `source`) in the shape the
reader gives labeled data, so cleaning, transforms, splits and the data report
work unchanged. Sources name the file and line (or the file, for a folder of
documents), and so do the errors.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tuneforge.data.bundled import is_bundled, load_bundled
from tuneforge.data.read import CANONICAL, FORMATS, read_table
from tuneforge.errors import DataError

LINE_FILES = (".txt", ".text")  # one document per line
DOCUMENT_SUFFIXES = (".txt", ".md", ".markdown")  # a folder: one document per file


def read_corpus(spec: str, data) -> tuple[pd.DataFrame, int]:
    """(rows of documents, blank lines skipped) from `spec` as `data` (the run's DataConfig) describes it."""
    if is_bundled(spec):
        frame = load_bundled(spec)
        return frame.rename(columns={"label": "input_label"}).assign(label=None), 0
    path = Path(spec).expanduser()
    if path.is_dir():
        return _folder(path, data.encoding), 0
    if not path.is_file():
        raise DataError(f"corpus not found: {path}")
    if path.suffix.lower() in LINE_FILES and data.format == "auto":
        return _lines(path, data.encoding)
    if data.format == "auto" and path.suffix.lower() not in FORMATS:
        raise DataError(
            f"{path}: cannot tell the format from the extension {path.suffix!r}; a corpus is a .txt file (one document per line), "
            "a folder of .txt/.md files, or a .csv/.jsonl/.parquet table with a text column (data.text_column)"
        )
    return read_table(path, text_column=data.text_column, label_column=None, fmt=data.format, encoding=data.encoding)


def _decode(path: Path, encoding: str) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path}:{line}: byte {raw[exc.start : exc.start + 1]!r} is not valid {encoding}; "
            "re-save the file as UTF-8 or set data.encoding (e.g. latin-1)"
        ) from None
    except LookupError:
        raise DataError(f"data.encoding: unknown encoding {encoding!r}") from None


def _lines(path: Path, encoding: str) -> tuple[pd.DataFrame, int]:
    rows, blank = [], 0
    for number, line in enumerate(_decode(path, encoding).removeprefix("\ufeff").splitlines(), start=1):
        if line.strip():
            rows.append((line, None, f"{path}:{number}"))
        else:
            blank += 1
    if not rows:
        raise DataError(f"{path}: no text (a .txt corpus holds one document per line)")
    return pd.DataFrame(rows, columns=list(CANONICAL)), blank


def _folder(path: Path, encoding: str) -> pd.DataFrame:
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in DOCUMENT_SUFFIXES and not p.name.startswith("."))
    if not files:
        found = sorted({p.suffix or p.name for p in path.rglob("*") if p.is_file()})[:10]
        raise DataError(f"{path}: no .txt or .md documents in this folder (found: {', '.join(found) or 'nothing'})")
    rows = [(_decode(file, encoding).removeprefix("\ufeff"), None, str(file)) for file in files]
    return pd.DataFrame(rows, columns=list(CANONICAL))
