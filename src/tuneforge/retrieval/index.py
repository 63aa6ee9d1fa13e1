"""`VectorIndex`: unit vectors with integer ids, searched by inner product (cosine similarity).

faiss (`IndexIDMap2` over an exact `IndexFlatIP`) when it is installed (extra `chat`),
exact numpy search otherwise; both give the same ranking. The vectors themselves are
saved as safetensors beside the ids, so a saved index reloads into either backend
without re-embedding anything, and entries are added or removed without a rebuild.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

import numpy as np

from tuneforge.atomic import atomic_write_bytes
from tuneforge.errors import DataError

logger = logging.getLogger(__name__)
VECTORS_FILE = "vectors.safetensors"


def _faiss():
    """The faiss module, or None (numpy search) when the `chat` extra is not installed."""
    try:
        return importlib.import_module("faiss")
    except ImportError:
        return None


def normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class VectorIndex:
    """Exact cosine search over (id, vector) pairs; `backend` is "faiss" or "numpy"."""

    def __init__(self, dim: int, *, use_faiss: bool = True):
        if dim < 1:
            raise DataError(f"an index needs vectors of at least one dimension, got {dim}")
        self.dim = dim
        self.ids = np.zeros(0, dtype=np.int64)
        self.vectors = np.zeros((0, dim), dtype=np.float32)
        faiss = _faiss() if use_faiss else None
        self.backend = "faiss" if faiss is not None else "numpy"
        self._faiss = faiss.IndexIDMap2(faiss.IndexFlatIP(dim)) if faiss is not None else None

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, ids, vectors: np.ndarray) -> None:
        """Add vectors (normalised here) under new integer ids; an id already present is an error."""
        ids = np.asarray(ids, dtype=np.int64)
        vectors = normalize(np.atleast_2d(vectors))
        if vectors.shape != (len(ids), self.dim):
            raise DataError(f"index.add: {len(ids)} ids need vectors of shape ({len(ids)}, {self.dim}), got {vectors.shape}")
        clash = np.intersect1d(ids, self.ids)
        if len(clash) or len(np.unique(ids)) != len(ids):
            raise DataError(f"index.add: id {int(clash[0]) if len(clash) else int(ids[0])} is already in the index")
        self.ids = np.concatenate([self.ids, ids])
        self.vectors = np.concatenate([self.vectors, vectors])
        if self._faiss is not None:
            self._faiss.add_with_ids(vectors, ids)

    def remove(self, ids) -> int:
        """Drop the given ids (unknown ones are ignored); returns how many were removed."""
        ids = np.asarray(ids, dtype=np.int64)
        keep = ~np.isin(self.ids, ids)
        removed = int((~keep).sum())
        self.ids, self.vectors = self.ids[keep], self.vectors[keep]
        if self._faiss is not None and removed:
            self._faiss.remove_ids(ids)
        return removed

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each [n_queries, k'] with k' = min(k, size), best first; cosine similarities."""
        queries = normalize(np.atleast_2d(queries))
        k = min(k, len(self))
        if k == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        if self._faiss is not None:
            scores, ids = self._faiss.search(queries, k)
            return scores, ids
        similarities = queries @ self.vectors.T
        top = np.argpartition(-similarities, k - 1, axis=1)[:, :k]
        rows = np.arange(len(queries))[:, None]
        # ties broken by position in the index, like faiss's flat search
        order = np.lexsort((top, -similarities[rows, top]), axis=1)
        top = top[rows, order]
        return similarities[rows, top].astype(np.float32), self.ids[top]

    # -- saving ------------------------------------------------------------------------------

    def save(self, folder: str | Path) -> None:
        """Write `vectors.safetensors` (ids and unit vectors) into `folder`, atomically."""
        from safetensors.numpy import save

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(folder / VECTORS_FILE, save({"ids": self.ids, "vectors": self.vectors}))

    @classmethod
    def load(cls, folder: str | Path, *, use_faiss: bool = True) -> VectorIndex:
        from safetensors.numpy import load_file

        path = Path(folder) / VECTORS_FILE
        if not path.is_file():
            raise DataError(f"{path}: no saved index here")
        arrays = load_file(str(path))
        index = cls(arrays["vectors"].shape[1], use_faiss=use_faiss)
        index.add(arrays["ids"], arrays["vectors"])
        return index
