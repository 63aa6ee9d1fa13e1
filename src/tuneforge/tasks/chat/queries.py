"""Evaluation queries of the chat task: query, reference answer, expected source(s), kind and split.

`kind` is `faq` (a reworded FAQ question), `document` (about a document's contents) or
`out_of_scope` (must be handed over). Rows carry their split (`validation`: thresholds
are chosen on it; `test`: reported); without a split column they are split in half,
seeded, within each kind.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tuneforge.data.bundled import is_bundled, load_bundled
from tuneforge.data.read import read_table
from tuneforge.errors import DataError

KINDS = ("faq", "document", "out_of_scope")
SPLITS = ("validation", "test")


def read_queries(spec: str | None, chat, *, encoding: str = "utf-8", seed: int = 0, keep_split: bool = True) -> pd.DataFrame:
    """The queries as text (query), label (reference), expected_source, kind, split and source columns."""
    columns = ["text", "label", "expected_source", "kind", "split", "source"]
    if spec is None:
        return pd.DataFrame(columns=columns)
    if is_bundled(spec):
        frame = load_bundled(spec)
    else:
        try:
            frame, _ = read_table(spec, text_column="query", label_column=None, encoding=encoding)
        except DataError as exc:
            raise DataError(f"{exc} (chat.eval_queries: each query needs a 'query' field)".replace("; set data.text_column", "")) from None
        frame = frame.drop(columns="label").rename(columns={"reference": "label"})
        if "label" not in frame:
            frame["label"] = None
    for column in ("expected_source", "kind", "split"):
        if column not in frame:
            frame[column] = None
    bad_text = frame["text"].map(lambda v: not isinstance(v, str) or not v.strip())
    if bad_text.any():
        raise DataError(f"{frame.loc[bad_text.idxmax(), 'source']}: column 'query' is empty or missing")
    unknown = ~frame["kind"].isin(KINDS)
    if unknown.any():
        row = frame[unknown].iloc[0]
        raise DataError(f"{row['source']}: column 'kind' must be one of {', '.join(KINDS)}; got {row['kind']!r}")
    in_scope = frame["kind"] != "out_of_scope"
    no_source = in_scope & frame["expected_source"].map(lambda v: not isinstance(v, str) or not v.strip())
    if no_source.any():
        raise DataError(
            f"{frame.loc[no_source.idxmax(), 'source']}: a {frame.loc[no_source.idxmax(), 'kind']} query needs 'expected_source'"
        )
    if not keep_split:
        frame["split"] = "test"
    elif frame["split"].isna().all():
        frame["split"] = _halves(frame, seed)
    bad_split = ~frame["split"].isin(SPLITS)
    if bad_split.any():
        row = frame[bad_split].iloc[0]
        raise DataError(f"{row['source']}: column 'split' must be validation or test; got {row['split']!r}")
    if chat.eval_max_queries is not None:
        frame = pd.concat([_first_per_kind(frame[frame["split"] == s], chat.eval_max_queries) for s in SPLITS], ignore_index=True)
    return frame[columns + [c for c in frame.columns if c not in columns]].reset_index(drop=True)


def _halves(frame: pd.DataFrame, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    out = [""] * len(frame)
    for _, group in frame.groupby("kind"):
        order = rng.permutation(group.index.to_numpy())
        for i, index in enumerate(order):
            out[frame.index.get_loc(index)] = "validation" if i < len(order) // 2 else "test"
    return out


def _first_per_kind(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    """At most `n` rows, taken round-robin over the kinds so each kind stays represented."""
    rank = frame.groupby("kind").cumcount()
    return frame.assign(_rank=rank).sort_values(["_rank", "kind"], kind="stable").head(n).drop(columns="_rank")
