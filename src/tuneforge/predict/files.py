"""Score a file into another file, chunk by chunk, so inputs larger than memory work.

The input is read by the same reader training uses (`data/read.py`). The output
appears only when scoring finished (written under a temporary name, then
renamed); every input column is kept, and the task's prediction columns are
added — with a `pred_` prefix where a name is already taken by the input.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from tuneforge.atomic import TMP_SUFFIX, atomic_file
from tuneforge.data.read import detect_format, read_chunks
from tuneforge.errors import DataError

logger = logging.getLogger(__name__)
OUTPUT_FORMATS = ("csv", "jsonl", "parquet")


def score_file(
    predictor,
    input_path: str | Path,
    output_path: str | Path,
    *,
    text_column: str = "text",
    chunk_rows: int = 1024,
    encoding: str = "utf-8",
    scoring=None,
) -> dict:
    """Stream `input_path` through `predictor` (None when `scoring` is given); returns rows scored and seconds taken.

    `scoring` runs the model over the chunks (default: `LocalScoring(predictor)`, in this
    process; `predict.ray_scoring.RayScoring` fans them out to Ray actors). Reading and
    writing stay here either way, so every engine writes the same bytes."""
    input_path, output_path = Path(input_path), Path(output_path)
    if not input_path.is_file():
        raise DataError(f"input file not found: {input_path}")
    if output_path.exists() and output_path.resolve() == input_path.resolve():
        raise DataError(f"--output {output_path} is the input file; write the scores to a new file")
    in_fmt, out_fmt = detect_format(input_path), detect_format(output_path)
    if out_fmt not in OUTPUT_FORMATS:
        raise DataError(f"--output {output_path}: scores are written as .csv, .jsonl or .parquet")
    removed = remove_stale_temporaries(output_path)
    if removed:
        logger.info("removed %d temporary file(s) left by an interrupted run: %s", len(removed), ", ".join(removed))
    scoring = scoring if scoring is not None else LocalScoring(predictor)
    started, rows = time.perf_counter(), 0
    chunks = read_chunks(input_path, text_column=text_column, fmt=in_fmt, encoding=encoding, chunk_rows=chunk_rows)
    bar = tqdm(desc=f"scoring {input_path.name}", unit="row")
    writer = _WRITERS[out_fmt]
    with atomic_file(output_path, "wb") as fh:
        state: dict = {}
        for frame, columns in scoring.map_chunks(chunks):
            writer(fh, attach_predictions(_as_input(frame, text_column), columns), state)
            rows += len(frame)
            bar.update(len(frame))
        if "parquet" in state:
            state["parquet"].close()
        if out_fmt == "csv" and not state:
            fh.write(
                ",".join([text_column, *scoring.task.scoring_columns(scoring.task.empty_raw(scoring.meta), scoring.meta)]).encode() + b"\n"
            )
    bar.close()
    return {"rows": rows, "seconds": round(time.perf_counter() - started, 3), "output": str(output_path)}


class LocalScoring:
    """The model work of file scoring, in this process."""

    def __init__(self, predictor):
        self.predictor, self.task, self.meta = predictor, predictor.task, predictor.meta

    def map_chunks(self, chunks: Iterator[pd.DataFrame]) -> Iterator[tuple[pd.DataFrame, dict[str, list]]]:
        for frame in chunks:
            yield frame, chunk_columns(self.predictor, frame)


def chunk_columns(predictor, frame: pd.DataFrame) -> dict[str, list]:
    """The task's prediction columns for one chunk of input rows (a missing text scores as "")."""
    texts = frame["text"].map(lambda t: t if isinstance(t, str) else "").tolist()
    return predictor.task.scoring_columns(predictor.predict_raw(texts), predictor.meta)


def _as_input(frame: pd.DataFrame, text_column: str) -> pd.DataFrame:
    """The input columns under their names in the file (the reader's canonical text/source renamed back)."""
    renamed = frame.drop(columns=["label", "source"]).rename(columns={"text": text_column})
    return renamed.rename(
        columns={c: c[len("input_") :] for c in renamed.columns if c.startswith("input_") and c[6:] in ("text", "label", "source")}
    )


def attach_predictions(frame: pd.DataFrame, columns: dict[str, list]) -> pd.DataFrame:
    """Input columns first, untouched; a prediction column whose name is taken gets a `pred_` prefix."""
    out = frame.copy()
    for name, values in columns.items():
        target = name
        while target in out.columns:
            target = f"pred_{target}"
        out[target] = values
    return out


def remove_stale_temporaries(output_path: Path) -> list[str]:
    """Temporary files an interrupted (killed) scoring of the same output left behind."""
    removed = []
    folder = output_path.parent if str(output_path.parent) else Path(".")
    if not folder.is_dir():
        return removed
    for path in folder.glob(f".{output_path.name}.*{TMP_SUFFIX}"):
        try:
            os.unlink(path)
            removed.append(path.name)
        except OSError:
            pass
    return removed


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
