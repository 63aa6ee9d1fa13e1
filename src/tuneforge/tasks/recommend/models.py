"""The recommenders: each turns weighted user histories into one score per catalogue item.

A query is a row of weights over items (a user's past, most recent weighing
most); `score(W)` returns a dense (queries x items) array. Keeping every
method behind that one call lets evaluation, the CLI and the service treat
them alike, and lets a user with no stored history (an anonymous session)
be scored from the items they just looked at.

- `popular`: interaction counts (per user segment when one is known).
- `als` / `bpr`: matrix factorisation by the `implicit` library; a query's user
  vector is solved against the item factors (ALS's own user step), so new
  sessions need no retraining.
- `ease`: Steck's closed-form item-item model (WWW 2019), B = -P / diag(P) with
  P = (X'X + lambda I)^-1; the history's recency weights make it sequence-aware.
- `content`: item vectors from the encoder over item text (the classifier's own
  `embed_texts`); a user is the weighted mean of their items.
- `hybrid`: ease plus a validation-chosen share of the content score; an item
  nobody has interacted with borrows the ease columns of its nearest items by
  content, so new items are recommendable at once.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from tuneforge.errors import ConfigError

METHODS = ("popular", "als", "bpr", "ease", "content", "hybrid")
USES_ENCODER = ("content", "hybrid")
EASE_MAX_ITEMS = 30_000  # an items x items float32 matrix: 30k items is 3.6 GB


def _implicit():
    try:
        import implicit  # noqa: F401
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise ConfigError("recommend.method als / bpr needs the recommend extra: pip install 'tuneforge[recommend]'") from None
    return implicit, threadpool_limits


def unit_rows(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.where(norms == 0, 1.0, norms)


class Popular:
    name = "popular"

    def fit(self, x: sp.csr_matrix, *, segments: np.ndarray | None = None, **_) -> Popular:
        counts = np.asarray(x.sum(axis=0)).ravel().astype(np.float32)
        self.arrays = {"popularity": counts}
        if segments is not None and (segments >= 0).any():  # one popularity row per segment: what a new user of it sees first
            members = np.flatnonzero(segments >= 0)
            onehot = sp.csr_matrix((np.ones(len(members)), (segments[members], members)), shape=(int(segments.max()) + 1, len(segments)))
            self.arrays["segment_popularity"] = np.asarray((onehot @ x).todense(), dtype=np.float32)
        return self

    def score(self, w: sp.csr_matrix, segment: np.ndarray | None = None) -> np.ndarray:
        base = np.tile(self.arrays["popularity"], (w.shape[0], 1))
        table = self.arrays.get("segment_popularity")
        if segment is not None and table is not None:
            known = (segment >= 0) & (segment < len(table))
            base[known] = table[segment[known]] + base[known] * 1e-6  # ties inside a segment go to the overall favourite
        return base


class Factorisation:
    """ALS or BPR item factors from `implicit`; users are folded in by ALS's least-squares step."""

    def __init__(self, name: str, *, factors: int, regularization: float, iterations: int, seed: int):
        self.name, self.factors, self.regularization, self.iterations, self.seed = name, factors, regularization, iterations, seed

    def fit(self, x: sp.csr_matrix, **_) -> Factorisation:
        implicit, threadpool_limits = _implicit()
        with threadpool_limits(1, "blas"):  # implicit's own threads do the work; BLAS threads would fight them
            if self.name == "als":
                model = implicit.cpu.als.AlternatingLeastSquares(
                    factors=self.factors, regularization=self.regularization, iterations=self.iterations, random_state=self.seed
                )
            else:
                model = implicit.cpu.bpr.BayesianPersonalizedRanking(
                    factors=self.factors, regularization=self.regularization, iterations=self.iterations * 10, random_state=self.seed
                )
            model.fit(x.astype(np.float32).tocsr(), show_progress=False)
        self.arrays = {"item_factors": np.asarray(model.item_factors, dtype=np.float32)}
        return self

    def score(self, w: sp.csr_matrix, segment=None) -> np.ndarray:
        # implicit's user step with confidence 1 per seen item: (Y'Y + reg I) u = Y' p, the same matrix for every user
        y = self.arrays["item_factors"].astype(np.float64)
        gram = y.T @ y + self.regularization * np.eye(y.shape[1])
        binary = (w > 0).astype(np.float64)
        users = np.linalg.solve(gram, np.asarray(binary @ y).T).T
        return (users @ y.T).astype(np.float32)


class Ease:
    name = "ease"

    def __init__(self, *, lam: float):
        self.lam = lam

    def fit(self, x: sp.csr_matrix, **_) -> Ease:
        if x.shape[1] > EASE_MAX_ITEMS:
            raise ConfigError(
                f"recommend.method ease holds an items x items matrix; {x.shape[1]:,} items is too many (at most {EASE_MAX_ITEMS:,}): use als"
            )
        gram = (x.T @ x).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.lam
        p = np.linalg.inv(gram)
        b = p / -np.diag(p)
        b[np.diag_indices_from(b)] = 0.0
        self.arrays = {"item_item": b.astype(np.float32)}
        return self

    def score(self, w: sp.csr_matrix, segment=None) -> np.ndarray:
        return np.asarray(w @ self.arrays["item_item"], dtype=np.float32)


class Content:
    name = "content"

    def fit(self, x: sp.csr_matrix, *, item_vectors: np.ndarray | None = None, **_) -> Content:
        if item_vectors is None:
            raise ConfigError("recommend.method content needs an item table with text (recommend.items)")
        vectors = item_vectors.astype(np.float32)
        described = np.linalg.norm(vectors, axis=1) > 0
        if described.any():  # sentence vectors share a large common direction; without it, cosine tells items apart
            vectors[described] -= vectors[described].mean(axis=0)
        self.arrays = {"item_vectors": unit_rows(vectors)}
        return self

    def score(self, w: sp.csr_matrix, segment=None) -> np.ndarray:
        e = self.arrays["item_vectors"]
        return unit_rows(np.asarray(w @ e)) @ e.T


class Hybrid:
    """ease + blend * content; items without interactions borrow ease columns from their content neighbours."""

    name = "hybrid"

    def __init__(self, *, lam: float, neighbours: int, blend: float = 0.0):
        self.lam, self.neighbours, self.blend = lam, neighbours, blend

    def fit(self, x: sp.csr_matrix, *, item_vectors: np.ndarray | None = None, **_) -> Hybrid:
        content = Content().fit(x, item_vectors=item_vectors)
        b = Ease(lam=self.lam).fit(x).arrays["item_item"]
        e = content.arrays["item_vectors"]
        seen = np.asarray(x.sum(axis=0)).ravel() > 0
        cold, warm = np.flatnonzero(~seen), np.flatnonzero(seen)
        if len(cold) and len(warm):
            similarity = e[cold] @ e[warm].T
            n = min(self.neighbours, len(warm))
            nearest = np.argpartition(-similarity, n - 1, axis=1)[:, :n]
            for row, item in enumerate(cold):
                weights = np.maximum(similarity[row, nearest[row]], 0)
                if weights.sum() > 0:
                    b[:, item] = b[:, warm[nearest[row]]] @ (weights / weights.sum())
        self.arrays = {"item_item": b, "item_vectors": e, "blend": np.array([self.blend], dtype=np.float32)}
        return self

    def parts(self, w: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        collaborative = np.asarray(w @ self.arrays["item_item"], dtype=np.float32)
        e = self.arrays["item_vectors"]
        return collaborative, unit_rows(np.asarray(w @ e)) @ e.T

    def score(self, w: sp.csr_matrix, segment=None) -> np.ndarray:
        collaborative, content = self.parts(w)
        return collaborative + float(self.arrays["blend"][0]) * content


def build(method: str, rc, *, seed: int):
    if method == "popular":
        return Popular()
    if method in ("als", "bpr"):
        return Factorisation(method, factors=rc.factors, regularization=rc.regularization, iterations=rc.iterations, seed=seed)
    if method == "ease":
        return Ease(lam=rc.ease_lambda)
    if method == "content":
        return Content()
    if method == "hybrid":
        return Hybrid(lam=rc.ease_lambda, neighbours=rc.neighbours, blend=rc.blend_weight or 0.0)
    raise ConfigError(f"recommend.method: unknown {method!r}; known: {', '.join(METHODS)}")


def restore(method: str, arrays: dict[str, np.ndarray], settings: dict):
    """A fitted recommender from its saved arrays and settings (no refit)."""
    if method in ("als", "bpr"):
        model = Factorisation(method, factors=0, regularization=settings["regularization"], iterations=0, seed=0)
    elif method == "hybrid":
        model = Hybrid(lam=0, neighbours=0)
    else:
        model = {"popular": Popular, "content": Content}.get(method, lambda: Ease(lam=0))()
    model.arrays = arrays
    return model
