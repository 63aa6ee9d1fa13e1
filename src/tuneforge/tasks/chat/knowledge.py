"""The bot's knowledge base: FAQ entries (question -> answer) and document passages, each with its source.

An FAQ entry is retrieved by its question and answered verbatim; a passage is a
window of `passage_words` words of a document, overlapping the next by
`passage_overlap` words so no fact falls between two, and remembers its document
(`source`) and where in it it starts (`position`: passage number, `start_word`).
"""

from __future__ import annotations

import glob
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from tuneforge.data.bundled import is_bundled, load_bundled
from tuneforge.data.read import read_table
from tuneforge.data.transforms import collapse_whitespace, strip_html
from tuneforge.errors import ConfigError, DataError

logger = logging.getLogger(__name__)
DOCUMENT_SUFFIXES = (".txt", ".md", ".html", ".htm")
DOCUMENT_SETS = ("bundled:bbc-news",)


@dataclass
class Entry:
    """One retrievable unit. `text` is what is embedded (an FAQ question, or a passage)."""

    id: int
    kind: str  # "faq" | "passage"
    text: str
    source: str
    answer: str | None = None  # FAQ entries only
    category: str | None = None
    title: str | None = None  # passages: the document's first line
    position: int | None = None  # passages: index of the passage in its document
    start_word: int | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def is_document_source(spec: str) -> bool:
    """Whether `data.train` / `chat.documents` names documents (folder, glob, text files) rather than an FAQ table."""
    if spec in DOCUMENT_SETS:
        return True
    if is_bundled(spec):
        return False
    path = Path(spec)
    return path.is_dir() or any(c in spec for c in "*?[") or path.suffix.lower() in DOCUMENT_SUFFIXES


def read_faq(spec: str, chat, *, encoding: str = "utf-8") -> pd.DataFrame:
    """FAQ rows as a frame with question (`text`), answer (`label`), category and source; errors name the column."""
    if is_bundled(spec):
        frame = load_bundled(spec)
        frame = frame.rename(columns={"question": "text", "answer": "label"}) if "question" in frame else frame
    else:
        try:
            frame, _ = read_table(spec, text_column=chat.question_column, label_column=chat.answer_column, encoding=encoding)
        except DataError as exc:  # the reader names the data.* settings; here the chat.* ones choose these columns
            message = str(exc).replace("data.text_column", "chat.question_column").replace("data.label_column", "chat.answer_column")
            raise DataError(message) from None
        if len(frame) and frame["text"].isna().all():
            raise DataError(f"{spec}: column {chat.question_column!r} not found (columns: {_columns(frame)}); set chat.question_column")
        if len(frame) and frame["label"].isna().all():
            raise DataError(f"{spec}: column {chat.answer_column!r} not found (columns: {_columns(frame)}); set chat.answer_column")
    for column, setting in (("text", "chat.question_column"), ("label", "chat.answer_column")):
        blank = frame[column].map(lambda v: not isinstance(v, str) or not v.strip())
        if blank.any():
            where = frame.loc[blank.idxmax(), "source"]
            raise DataError(f"{where}: {setting} is empty ({int(blank.sum())} row(s))")
    category = chat.category_column
    if category and category in frame.columns and category not in ("text", "label"):
        frame = frame.rename(columns={category: "category"})
    if "category" not in frame:
        frame["category"] = None
    before = len(frame)
    frame = frame.drop_duplicates(subset=["text", "label"]).reset_index(drop=True)
    if before != len(frame):
        logger.info("%s: %d duplicate question/answer pairs dropped", spec, before - len(frame))
    return frame[["text", "label", "category", "source"]]


def _columns(frame: pd.DataFrame) -> str:
    return ", ".join(c for c in frame.columns if c not in ("text", "label", "source"))


def read_documents(spec: str, *, max_documents: int | None = None, include: list[str] | tuple = ()) -> list[tuple[str, str]]:
    """(source, text) of every document, in sorted order; `max_documents` keeps the first N plus `include`."""
    if spec in DOCUMENT_SETS:
        frame = load_bundled(spec)
        docs = list(zip(frame["source"], frame["text"]))
    elif is_bundled(spec):
        raise ConfigError(f"chat.documents: {spec!r} is not a document set; bundled document sets: {', '.join(DOCUMENT_SETS)}")
    else:
        docs = [(str(p), _read_text(p)) for p in _document_files(spec)]
    if max_documents is not None and len(docs) > max_documents:
        wanted = set(include)
        docs = [d for i, d in enumerate(docs) if i < max_documents or d[0] in wanted]
    return docs


def _document_files(spec: str) -> list[Path]:
    path = Path(spec)
    if path.is_dir():
        files = [p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in DOCUMENT_SUFFIXES]
    elif any(c in spec for c in "*?["):
        files = [Path(p) for p in sorted(glob.glob(spec, recursive=True)) if Path(p).is_file()]
    elif path.is_file():
        files = [path]
    else:
        raise DataError(f"documents not found: {spec}")
    if not files:
        raise DataError(f"{spec}: no .txt, .md or .html files found")
    return files


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
        logger.info("%s is not UTF-8; decoded as Windows-1252", path)
    return strip_html(text).strip() if path.suffix.lower() in (".html", ".htm") else text


def split_passages(text: str, *, words: int, overlap: int) -> list[tuple[int, str]]:
    """(start word, passage) windows of `words` words, each sharing `overlap` words with the previous one."""
    tokens = text.split()
    if not tokens:
        return []
    step = words - overlap
    out = []
    for start in range(0, len(tokens), step):
        out.append((start, " ".join(tokens[start : start + words])))
        if start + words >= len(tokens):
            break
    return out


def build_entries(faq: pd.DataFrame | None, documents: list[tuple[str, str]], chat) -> list[Entry]:
    """FAQ entries first, then passages of every document; ids are positions, stable for add/remove later."""
    entries: list[Entry] = []
    if faq is not None:
        for row in faq.itertuples(index=False):
            entries.append(
                Entry(
                    id=len(entries),
                    kind="faq",
                    text=collapse_whitespace(row.text),
                    answer=row.label.strip(),
                    source=row.source,
                    category=None if pd.isna(row.category) else str(row.category),
                )
            )
    for source, text in documents:
        entries.extend(document_entries(source, text, chat, first_id=len(entries)))
    if not entries:
        raise DataError("the knowledge base is empty: give FAQ rows (data.train) or documents with text (chat.documents)")
    return entries


def document_entries(source: str, text: str, chat, *, first_id: int) -> list[Entry]:
    """The passages of one document as entries numbered from `first_id`."""
    title = next((line.strip() for line in text.splitlines() if line.strip()), None)
    passages = split_passages(text, words=chat.passage_words, overlap=chat.passage_overlap)
    return [
        Entry(id=first_id + n, kind="passage", text=passage, source=source, title=title, position=n, start_word=start)
        for n, (start, passage) in enumerate(passages)
    ]
