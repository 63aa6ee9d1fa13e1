"""A saved recommender and the one object that answers with it: `Recommender`.

The model folder holds `tuneforge.json` (method, settings), `recommender.safetensors`
(the fitted arrays and every known user's history in time order, as CSR arrays)
and `catalog.json` (item and user ids, user segments, item attributes for
filters and display). No pickles: a folder from elsewhere loads without running code.

Answers are fast because all item-side work is done at training time: a query
is one sparse-dense product over precomputed arrays, then `numpy.argpartition`.
"""

from __future__ import annotations

import functools
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import scipy.sparse as sp

from tuneforge.errors import ConfigError, DataError
from tuneforge.models.artifact import ModelMeta
from tuneforge.rundir import find_model_dir
from tuneforge.tasks.recommend.models import restore

ARRAYS_FILE = "recommender.safetensors"
CATALOG_FILE = "catalog.json"
FILTER_CACHE = 256


@dataclass
class Catalog:
    items: list[str]
    users: list[str]
    segments: list[str] = field(default_factory=list)  # segment names; user_segment indexes them
    segment_columns: list[str] = field(default_factory=list)
    item_attributes: dict[str, list[Any]] = field(default_factory=dict)  # column -> value per item

    def __post_init__(self) -> None:
        self.item_index = {x: i for i, x in enumerate(self.items)}
        self.user_index = {x: i for i, x in enumerate(self.users)}


def recency_weights(length: int, half_life: float | None) -> np.ndarray:
    """Weights of a history of `length` items, oldest first: the last weighs 1, halving every `half_life` steps back."""
    if half_life is None:
        return np.ones(length, dtype=np.float32)
    back = np.arange(length - 1, -1, -1, dtype=np.float64)
    return (0.5 ** (back / half_life)).astype(np.float32)


def query_matrix(histories: list[np.ndarray], n_items: int, half_life: float | None) -> sp.csr_matrix:
    """One row of recency weights per history (item indices, oldest first); a repeated item keeps its latest weight."""
    data, indices, indptr = [], [], [0]
    for items in histories:
        weights = recency_weights(len(items), half_life)
        latest = {}
        for item, weight in zip(items.tolist(), weights.tolist()):
            latest[item] = weight
        indices.extend(latest)
        data.extend(latest.values())
        indptr.append(len(indices))
    return sp.csr_matrix(
        (np.array(data, dtype=np.float32), np.array(indices, dtype=np.int64), np.array(indptr)), shape=(len(histories), n_items)
    )


@dataclass
class Query:
    """One service request's work for the batch function: a history to score, or an item to compare."""

    history: np.ndarray
    segment: int
    k: int
    exclude: np.ndarray | None
    mask: np.ndarray | None
    similar_to: int | None = None


@functools.cache
def _blas():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()  # finding the BLAS libraries takes milliseconds: once per process


class Recommender:
    """Top-k items for a user, a session of recent items, or similar to an item; filtered by item attributes."""

    def __init__(
        self, model, meta: ModelMeta, catalog: Catalog, history_indptr: np.ndarray, history_items: np.ndarray, user_segment: np.ndarray
    ):
        from tuneforge.tasks import get_task

        self.model, self.meta, self.catalog = model, meta, catalog
        self.task = get_task("recommend")
        self.backend = SimpleNamespace(name="numpy", tokenizer=None)
        self.history_indptr, self.history_items, self.user_segment = history_indptr, history_items, user_segment
        self.half_life = meta.extra["settings"].get("recency_half_life")
        self.k = 10  # list length of file scoring (`predict_raw`)
        self._filters: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._vectors: np.ndarray | None = None

    # -- loading and saving -------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path, **_) -> Recommender:
        from safetensors.numpy import load_file

        folder = find_model_dir(path)
        meta = ModelMeta.read(folder)
        if meta.task != "recommend":
            raise ConfigError(f"{folder} is a {meta.task} model, not a recommender")
        arrays = load_file(str(folder / ARRAYS_FILE))
        catalog = Catalog(**json.loads((folder / CATALOG_FILE).read_text(encoding="utf-8")))
        history = {k: arrays.pop(k) for k in ("history_indptr", "history_items", "user_segment")}
        model = restore(meta.method, arrays, meta.extra["settings"])
        return cls(model, meta, catalog, **history)

    @staticmethod
    def save(folder: Path, model, meta: ModelMeta, catalog: Catalog, histories: list[np.ndarray], user_segment: np.ndarray) -> None:
        from safetensors.numpy import save_file

        indptr = np.cumsum([0, *[len(h) for h in histories]]).astype(np.int64)
        items = np.concatenate(histories).astype(np.int64) if histories else np.zeros(0, np.int64)
        arrays = {**model.arrays, "history_indptr": indptr, "history_items": items, "user_segment": user_segment.astype(np.int64)}
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(folder / ARRAYS_FILE))
        fields = ("items", "users", "segments", "segment_columns", "item_attributes")
        (folder / CATALOG_FILE).write_text(json.dumps({f: getattr(catalog, f) for f in fields}) + "\n", encoding="utf-8")
        meta.write(folder)

    # -- scoring ------------------------------------------------------------------------------

    @property
    def n_items(self) -> int:
        return len(self.catalog.items)

    def history(self, user_row: int) -> np.ndarray:
        return self.history_items[self.history_indptr[user_row] : self.history_indptr[user_row + 1]]

    def score_users(self, user_rows: np.ndarray) -> np.ndarray:
        """Scores of every item for known users (rows of the catalogue), from their stored histories."""
        histories = [self.history(int(u)) for u in user_rows]
        return self.score_histories(histories, self.user_segment[user_rows])

    def score_histories(self, histories: list[np.ndarray], segments: np.ndarray | None = None) -> np.ndarray:
        """Scores for item histories (oldest first); an empty history gets its segment's (or overall) popularity."""
        w = query_matrix(histories, self.n_items, self.half_life)
        scores = self.model.score(w, segment=segments)
        empty = np.array([len(h) == 0 for h in histories])
        if empty.any():
            scores[empty] = self._fallback(segments[empty] if segments is not None else None, int(empty.sum()))
        return scores

    def _fallback(self, segments: np.ndarray | None, n: int) -> np.ndarray:
        from tuneforge.tasks.recommend.models import Popular

        popular = Popular()
        popular.arrays = self.model.arrays  # every saved model carries the training popularity (overall and per segment)
        return popular.score(sp.csr_matrix((n, self.n_items), dtype=np.float32), segment=segments)

    # -- answers ------------------------------------------------------------------------------

    def resolve_items(self, ids: list[str], *, field_name: str) -> np.ndarray:
        unknown = [x for x in ids if x not in self.catalog.item_index]
        if unknown:
            raise DataError(f"{field_name}: unknown item id {unknown[0]!r} ({len(unknown)} unknown of {len(ids)})")
        return np.array([self.catalog.item_index[x] for x in ids], dtype=np.int64)

    def segment_of(self, attributes: dict[str, str] | None) -> int:
        """The segment of a new user described by the user-table columns (e.g. gender, age_group); -1 when unknown."""
        if not attributes:
            return -1
        columns = self.catalog.segment_columns
        extra = sorted(set(attributes) - set(columns))
        if extra:
            raise DataError(f"segment.{extra[0]}: not a segment column; the model's are: {', '.join(columns) or 'none'}")
        if set(attributes) != set(columns):
            return -1  # a partial description matches no segment: overall favourites
        name = ", ".join(f"{c}={attributes[c]}" for c in columns)
        return self.catalog.segments.index(name) if name in self.catalog.segments else -1

    def query(
        self, *, user: str | None = None, items: list[str] | None = None, segment: dict[str, str] | None = None
    ) -> tuple[np.ndarray, int, bool]:
        """(history, segment, known user) for a user (plus any recent items) or an anonymous list of items.

        A user id the model has never seen is a new user: no history, and the segment `segment` describes (if any)."""
        history = np.zeros(0, dtype=np.int64)
        segment, known = self.segment_of(segment), False
        if user is not None:
            row = self.catalog.user_index.get(str(user))
            if row is not None:
                history, segment, known = self.history(row), int(self.user_segment[row]), True
        if items:
            history = np.concatenate([history, self.resolve_items(items, field_name="items")])
        return history, segment, known

    def item_mask(self, filters: dict[str, Any] | None) -> np.ndarray | None:
        """Items whose attributes match every filter (a value equals the attribute, or is one of its words)."""
        if not filters:
            return None
        key = tuple(sorted((k, str(v)) for k, v in filters.items()))
        cached = self._filters.get(key)
        if cached is not None:
            self._filters.move_to_end(key)
            return cached
        mask = np.ones(self.n_items, dtype=bool)
        for column, wanted in filters.items():
            values = self.catalog.item_attributes.get(column)
            if values is None:
                known = ", ".join(self.catalog.item_attributes) or "none"
                raise DataError(f"filters.{column}: no such item attribute; known: {known}")
            want = str(wanted).strip().lower()
            mask &= np.array(
                [v is not None and (str(v).lower() == want or want in str(v).lower().replace("|", " ").split()) for v in values]
            )
        self._filters[key] = mask
        if len(self._filters) > FILTER_CACHE:
            self._filters.popitem(last=False)
        return mask

    def top(
        self, scores: np.ndarray, *, k: int, exclude: np.ndarray | None = None, mask: np.ndarray | None = None
    ) -> list[tuple[str, float]]:
        s = scores.astype(np.float64, copy=True)
        if exclude is not None and len(exclude):
            s[exclude] = -np.inf
        if mask is not None:
            s[~mask] = -np.inf
        allowed = int(np.isfinite(s).sum())
        k = min(k, allowed)
        if k <= 0:
            return []
        best = np.argpartition(-s, k - 1)[:k]
        best = best[np.lexsort((best, -s[best]))]
        return [(self.catalog.items[i], float(s[i])) for i in best]

    def recommend(
        self,
        *,
        user: str | None = None,
        items: list[str] | None = None,
        segment: dict[str, str] | None = None,
        k: int = 10,
        exclude_seen: bool = True,
        filters: dict | None = None,
    ) -> tuple[list[tuple[str, float]], bool]:
        """(ranked items, whether the user is known); a new user gets the popular items of their segment, or overall."""
        history, segment, known = self.query(user=user, items=items, segment=segment)
        scores = self.score_histories([history], np.array([segment]))[0]
        return self.top(scores, k=k, exclude=history if exclude_seen else None, mask=self.item_mask(filters)), known

    def answer_batch(self, queries: list[Query]) -> list[list[tuple[str, float]]]:
        """The service batcher's function: every history query scored in one product, similar-item queries by vector.

        One BLAS thread: these products take microseconds, and waking a thread pool on a busy machine costs milliseconds."""
        with _blas().limit(limits=1, user_api="blas"):
            out: list = [None] * len(queries)
            ranked = [i for i, q in enumerate(queries) if q.similar_to is None]
            if ranked:
                scores = self.score_histories([queries[i].history for i in ranked], np.array([queries[i].segment for i in ranked]))
                for row, i in enumerate(ranked):
                    q = queries[i]
                    out[i] = self.top(scores[row], k=q.k, exclude=q.exclude, mask=q.mask)
            for i, q in enumerate(queries):
                if q.similar_to is not None:
                    vectors = self.item_vectors()
                    out[i] = self.top(vectors @ vectors[q.similar_to], k=q.k, exclude=np.array([q.similar_to]), mask=q.mask)
            return out

    def predict_raw(self, users, *, progress: str | None = None, batch_size: int | None = None) -> list[dict]:
        """Top-k (`self.k`) unseen items for each user id: what file scoring writes, one dict per row.

        A user the model has never seen gets the popular items of their segment (or overall), flagged `known_user: False`."""
        out = []
        for user in users:
            row = self.catalog.user_index.get(str(user).strip())
            history = self.history(row) if row is not None else np.zeros(0, dtype=np.int64)
            segment = np.array([int(self.user_segment[row]) if row is not None else -1])
            ranked = self.top(self.score_histories([history], segment)[0], k=self.k, exclude=history)
            out.append({"known_user": row is not None, "items": [i for i, _ in ranked], "scores": [round(s, 6) for _, s in ranked]})
        return out

    def similar(self, item: str, *, k: int = 10, filters: dict | None = None) -> list[tuple[str, float]]:
        index = int(self.resolve_items([item], field_name="item")[0])
        vectors = self.item_vectors()
        scores = vectors @ vectors[index]
        return self.top(scores, k=k, exclude=np.array([index]), mask=self.item_mask(filters))

    def item_vectors(self) -> np.ndarray:
        """What "similar" compares: content vectors, else item factors, else item-item columns."""
        from tuneforge.tasks.recommend.models import unit_rows

        if self._vectors is not None:
            return self._vectors
        arrays = self.model.arrays
        for name in ("item_vectors", "item_factors", "item_item"):
            if name in arrays:
                self._vectors = unit_rows(arrays[name] + (arrays[name].T if name == "item_item" else 0))
                return self._vectors
        raise ConfigError(f"a {self.meta.method} model ranks by popularity only; it has no notion of similar items")

    def describe_item(self, item: str) -> dict[str, Any]:
        row = self.catalog.item_index[item]
        return {column: values[row] for column, values in self.catalog.item_attributes.items()}
