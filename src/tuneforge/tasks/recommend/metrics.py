"""Ranking metrics over the full catalogue: HR, NDCG, Recall and MAP at k, coverage, novelty, popularity bias.

Every item the user has not interacted with is a candidate (no sampled
negatives: sampled metrics overstate quality and can reorder methods). A held-out
item's position is the number of candidates scored above it, plus those tied
with it that come first in a fixed seeded order: ties never flatter a method
(a model that scores everything 0 gets a random position, not the top).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

USER_BATCH = 256


def positions(scores: np.ndarray, seen: sp.csr_matrix, rows: np.ndarray, items: np.ndarray, tiebreak: np.ndarray) -> np.ndarray:
    """0-based list position of `items[j]` for query row `rows[j]` among that row's unseen items."""
    s = scores.astype(np.float64, copy=True)
    s[seen.nonzero()] = -np.inf
    target = s[rows, items][:, None]
    above = (s[rows] > target).sum(axis=1)
    tied_before = ((s[rows] == target) & (tiebreak[None, :] < tiebreak[items][:, None])).sum(axis=1)
    return above + tied_before


def ranking_metrics(position_lists: list[np.ndarray], ks: list[int]) -> dict[str, float]:
    """HR, NDCG, Recall, MAP at each k, averaged over users; `position_lists[u]` holds user u's held-out items' positions."""
    out: dict[str, float] = {}
    n = len(position_lists)
    for k in ks:
        hr = ndcg = recall = ap = 0.0
        for pos in position_lists:
            hits = np.sort(pos[pos < k])
            if len(hits) == 0:
                continue
            hr += 1
            ideal = np.sum(1.0 / np.log2(np.arange(min(len(pos), k)) + 2))
            ndcg += np.sum(1.0 / np.log2(hits + 2)) / ideal
            recall += len(hits) / len(pos)
            ap += np.sum(np.arange(1, len(hits) + 1) / (hits + 1)) / min(len(pos), k)
        for name, total in (("hr", hr), ("ndcg", ndcg), ("recall", recall), ("map", ap)):
            out[f"{name}@{k}"] = round(float(total) / n, 6) if n else 0.0
    return out


def evaluate_rankings(
    score: Callable[[np.ndarray], np.ndarray],
    seen: sp.csr_matrix,
    targets: dict[int, np.ndarray],
    ks: list[int],
    *,
    seed: int = 0,
    candidates: np.ndarray | None = None,
    popularity: np.ndarray | None = None,
) -> dict:
    """Metrics of `score(user_rows) -> scores` for users `targets` (row -> held-out item indices).

    `candidates` limits the ranking to those items (e.g. only the new ones, for cold start);
    `popularity` (training interaction counts) adds coverage, novelty and popularity bias of the top max(k)."""
    n_items = seen.shape[1]
    tiebreak = np.random.default_rng(seed).permutation(n_items)
    users = np.array(sorted(targets), dtype=np.int64)
    top_k = max(ks)
    position_lists: list[np.ndarray] = []
    shown = {k: np.zeros(n_items, dtype=np.int64) for k in ks}
    for start in range(0, len(users), USER_BATCH):
        batch = users[start : start + USER_BATCH]
        scores = score(batch).astype(np.float64)
        if candidates is not None:
            masked = np.full_like(scores, -np.inf)
            masked[:, candidates] = scores[:, candidates]
            scores = masked
        rows = np.concatenate([np.full(len(targets[u]), i) for i, u in enumerate(batch)])
        items = np.concatenate([targets[u] for u in batch])
        pos = positions(scores, seen[batch], rows, items, tiebreak)
        bounds = np.cumsum([0, *[len(targets[u]) for u in batch]])
        position_lists.extend(pos[bounds[i] : bounds[i + 1]] for i in range(len(batch)))
        if popularity is not None:
            scores[seen[batch].nonzero()] = -np.inf
            top = np.argpartition(-scores, min(top_k, n_items - 1), axis=1)[:, :top_k]
            top = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable"), axis=1)
            for k in ks:
                np.add.at(shown[k], top[:, :k].ravel(), 1)
    metrics: dict = {"users": len(users), **ranking_metrics(position_lists, ks)}
    if popularity is not None and len(users):
        for k in ks:
            metrics.update(list_qualities(shown[k], popularity, k))
    return metrics


def list_qualities(shown: np.ndarray, popularity: np.ndarray, k: int) -> dict[str, float]:
    """Catalogue coverage, novelty (mean self-information of shown items) and popularity bias of the top-k lists."""
    total = popularity.sum()
    share = np.clip(popularity / total if total else popularity, 1e-12, None)
    percentile = (np.argsort(np.argsort(popularity)) + 1) / len(popularity)
    weights = shown / max(shown.sum(), 1)
    return {
        f"coverage@{k}": round(float((shown > 0).mean()), 6),
        f"novelty@{k}": round(float(np.sum(weights * -np.log2(share))), 4),
        f"popularity_percentile@{k}": round(float(np.sum(weights * percentile)), 4),
    }
