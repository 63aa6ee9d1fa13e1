"""Score a file into another file, chunk by chunk, so inputs larger than memory work.

The output appears only when scoring finished (written under a temporary name,
then renamed); input columns are kept and `label`, `score`, `prob_<label>` added.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from tuneforge.data.load import detect_format
from tuneforge.errors import DataError
from tuneforge.predict.predictor import Predictor
from tuneforge.runs import atomic_file

logger = logging.getLogger(__name__)


def score_file(
    predictor: Predictor,
    input_path: str | Path,
    output_path: str | Path,
    *,
    text_column: str = "text",
    chunk_rows: int = 1024,
    encoding: str = "utf-8",
) -> dict:
    """Stream `input_path` through `predictor`; returns rows scored and seconds taken."""
    input_path, output_path = Path(input_path), Path(output_path)
    if not input_path.is_file():
        raise DataError(f"input file not found: {input_path}")
    in_fmt, out_fmt = detect_format(input_path), detect_format(output_path)
    started, rows = time.perf_counter(), 0
    chunks = _read_chunks(input_path, in_fmt, text_column, chunk_rows, encoding)
    bar = tqdm(desc=f"scoring {input_path.name}", unit="row")
    writer = _WRITERS[out_fmt]
    with atomic_file(output_path, "wb") as fh:
        state: dict = {}
        for frame in chunks:
            texts = frame[text_column].fillna("").astype(str).tolist()
            probs = predictor.predict_proba(texts)
            scored = _attach(frame, predictor, probs)
            writer(fh, scored, state)
            rows += len(frame)
            bar.update(len(frame))
        if "parquet" in state:
            state["parquet"].close()
        if out_fmt == "csv" and not state:
            fh.write(",".join([text_column, "label", "score"]).encode() + b"\n")
    bar.close()
    return {"rows": rows, "seconds": round(time.perf_counter() - started, 3), "output": str(output_path)}


def _attach(frame: pd.DataFrame, predictor: Predictor, probs) -> pd.DataFrame:
    labels = predictor.labels
    best = probs.argmax(axis=1)
    out = frame.copy()
    out["label"] = [labels[i] for i in best]
    out["score"] = probs.max(axis=1).round(6)
    for j, label in enumerate(labels):
        out[f"prob_{label}"] = probs[:, j].round(6)
    return out


def _read_chunks(path: Path, fmt: str, text_column: str, chunk_rows: int, encoding: str) -> Iterator[pd.DataFrame]:
    if fmt == "csv":
        reader = pd.read_csv(
            path,
            chunksize=chunk_rows,
            dtype=str,
            keep_default_na=False,
            encoding=encoding,
            sep="\t" if path.suffix.lower() == ".tsv" else ",",
        )
        first = True
        try:
            for frame in reader:
                if first and text_column not in frame.columns:
                    raise DataError(f"{path}: column {text_column!r} not found (columns: {', '.join(frame.columns)}); pass --text-column")
                first = False
                yield frame
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{path}: byte at offset {exc.start} of a chunk is not valid {encoding}; re-save as UTF-8 or pass --encoding"
            ) from None
        except pd.errors.ParserError as exc:
            raise DataError(f"{path}: unreadable CSV ({exc})") from None
    elif fmt == "jsonl":
        yield from _jsonl_chunks(path, text_column, chunk_rows, encoding)
    else:
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        if text_column not in parquet.schema_arrow.names:
            raise DataError(
                f"{path}: column {text_column!r} not found (columns: {', '.join(parquet.schema_arrow.names)}); pass --text-column"
            )
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()


def _jsonl_chunks(path: Path, text_column: str, chunk_rows: int, encoding: str) -> Iterator[pd.DataFrame]:
    records: list[dict] = []
    number = 0
    with open(path, encoding=encoding) as fh:
        try:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{number}: invalid JSON at column {exc.colno}: {exc.msg}") from None
                if not isinstance(obj, dict) or text_column not in obj:
                    raise DataError(f"{path}:{number}: expected a JSON object with key {text_column!r}")
                records.append(obj)
                if len(records) >= chunk_rows:
                    yield pd.DataFrame.from_records(records)
                    records = []
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: line {number + 1}: bytes are not valid {encoding} ({exc.reason})") from None
    if records:
        yield pd.DataFrame.from_records(records)


def _write_csv(fh, frame: pd.DataFrame, state: dict) -> None:
    fh.write(frame.to_csv(index=False, header=not state.get("csv")).encode("utf-8"))
    state["csv"] = True


def _write_jsonl(fh, frame: pd.DataFrame, state: dict) -> None:
    text = frame.to_json(orient="records", lines=True, force_ascii=False)
    if text and not text.endswith("\n"):
        text += "\n"
    fh.write(text.encode("utf-8"))


def _write_parquet(fh, frame: pd.DataFrame, state: dict) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if "parquet" not in state:
        state["parquet"] = pq.ParquetWriter(fh, table.schema)
    state["parquet"].write_table(table)


_WRITERS = {"csv": _write_csv, "jsonl": _write_jsonl, "parquet": _write_parquet}
