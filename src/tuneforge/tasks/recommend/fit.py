"""Training a recommender: catalogue, candidates scored on validation, the winner refit on train + validation.

`recommend.method: auto` fits every method on the training interactions and
keeps the best validation NDCG@10 (the whole table goes to run.json and the
model card, so the baseline's figure is always beside the winner's). The hybrid's
content share is chosen on validation the same way. The chosen model is then
refit on train + validation, so test users are scored from their whole past.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tuneforge.errors import ConfigError
from tuneforge.models.artifact import ModelMeta
from tuneforge.tasks.recommend.data import SideTable, read_side_table
from tuneforge.tasks.recommend.metrics import evaluate_rankings
from tuneforge.tasks.recommend.models import METHODS, USES_ENCODER, Popular, build
from tuneforge.tasks.recommend.runtime import Catalog, Recommender, query_matrix

logger = logging.getLogger(__name__)
BLEND_GRID = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0)
NO_SEGMENT = -1


def side_tables(config) -> tuple[SideTable | None, SideTable | None]:
    rc, data = config.recommend, config.data
    items = read_side_table(rc.items, rc.item_id_column, "recommend.item_id_column", data) if rc.items else None
    users = read_side_table(rc.users, rc.user_id_column, "recommend.user_id_column", data) if rc.users else None
    return items, users


def text_columns(rc, items: SideTable) -> list[str]:
    columns = rc.item_text_columns or items.column_names()
    missing = [c for c in columns if c not in items.frame.columns]
    if missing:
        raise ConfigError(
            f"recommend.item_text_columns: {missing[0]!r} is not a column of {items.origin}; columns: {', '.join(items.column_names())}"
        )
    return columns


def segment_columns(rc, users: SideTable) -> list[str]:
    columns = rc.segment_columns if rc.segment_columns is not None else users.column_names()
    missing = [c for c in columns if c not in users.frame.columns]
    if missing:
        raise ConfigError(
            f"recommend.segment_columns: {missing[0]!r} is not a column of {users.origin}; columns: {', '.join(users.column_names())}"
        )
    return columns


def build_catalog(frames: dict[str, pd.DataFrame], items: SideTable | None, users: SideTable | None, rc) -> tuple[Catalog, np.ndarray]:
    """Every item of the interactions and the item table; every user; each user's segment index (-1: none)."""
    all_rows = pd.concat(frames.values())
    item_ids = sorted(set(all_rows["item"]) | (set(items.frame.index) if items is not None else set()))
    # users of the user table without interactions are known too: they start from their segment's favourites
    user_ids = sorted(set(all_rows["user"]) | (set(users.frame.index) if users is not None else set()))
    attributes: dict[str, list] = {}
    if items is not None:
        table = items.frame.reindex(item_ids)
        attributes = {c: [None if pd.isna(v) else v for v in table[c].tolist()] for c in items.column_names()}
    segments: list[str] = []
    columns: list[str] = []
    user_segment = np.full(len(user_ids), NO_SEGMENT, dtype=np.int64)
    if users is not None:
        columns = segment_columns(rc, users)
        table = users.frame.reindex(user_ids)
        names = [
            None if any(pd.isna(v) for v in row) else ", ".join(f"{c}={v}" for c, v in zip(columns, row))
            for row in table[columns].itertuples(index=False)
        ]
        segments = sorted({n for n in names if n is not None})
        index = {n: i for i, n in enumerate(segments)}
        user_segment = np.array([index.get(n, NO_SEGMENT) if n else NO_SEGMENT for n in names], dtype=np.int64)
    catalog = Catalog(items=item_ids, users=user_ids, segments=segments, segment_columns=columns, item_attributes=attributes)
    return catalog, user_segment


def histories(frame: pd.DataFrame, catalog: Catalog) -> list[np.ndarray]:
    """Each catalogue user's items in `frame` (already in time order), oldest first."""
    rows = frame["user"].map(catalog.user_index).to_numpy()
    cols = frame["item"].map(catalog.item_index).to_numpy()
    out: list[list[int]] = [[] for _ in catalog.users]
    for r, c in zip(rows, cols):
        out[r].append(c)
    return [np.array(h, dtype=np.int64) for h in out]


def seen_matrix(history: list[np.ndarray], n_items: int) -> sp.csr_matrix:
    return query_matrix(history, n_items, None)


def targets_of(frame: pd.DataFrame, catalog: Catalog) -> dict[int, np.ndarray]:
    grouped = frame.assign(u=frame["user"].map(catalog.user_index), i=frame["item"].map(catalog.item_index)).groupby("u")["i"]
    return {int(u): items.to_numpy(dtype=np.int64) for u, items in grouped}


def item_texts(catalog: Catalog, columns: list[str]) -> list[str]:
    out = []
    for row in range(len(catalog.items)):
        parts = [f"{c}: {catalog.item_attributes[c][row]}" for c in columns if catalog.item_attributes[c][row] not in (None, "")]
        out.append("; ".join(parts))
    return out


def embed_items(ctx, catalog: Catalog, items: SideTable) -> np.ndarray:
    """Encoder vectors of every item's text (zero for items the table does not describe)."""
    from tuneforge.models.encode import embed_texts
    from tuneforge.models.loading import load_encoder, load_tokenizer

    rc = ctx.config.recommend
    texts = item_texts(catalog, text_columns(rc, items))
    name, remote = ctx.config.model.name, ctx.config.model.trust_remote_code
    encoder = load_encoder(ctx.model_path, name=name, remote=remote)
    tokenizer = load_tokenizer(ctx.model_path, name=name, remote=remote)
    described = [i for i, t in enumerate(texts) if t]
    vectors = np.zeros((len(texts), encoder.config.hidden_size), dtype=np.float32)
    if described:
        vectors[described] = embed_texts(
            encoder,
            tokenizer,
            [texts[i] for i in described],
            max_length=rc.max_length,
            batch_size=64,
            pooling="mean",
            progress="embedding items",
        )
    return vectors


def main_k(ks: list[int]) -> int:
    return 10 if 10 in ks else max(ks)


def train_recommender(ctx, out_dir: Path) -> dict:
    config = ctx.config
    rc, seed = config.recommend, config.train.seed
    frames = ctx.data.splits()
    items, users = side_tables(config)
    catalog, user_segment = build_catalog(frames, items, users, rc)
    n_items, k = len(catalog.items), main_k(rc.k)
    candidates = list(METHODS) if rc.method == "auto" else [rc.method]
    if items is None:
        if rc.method in USES_ENCODER:
            raise ConfigError(f"recommend.method {rc.method} reads item text: give an item table (recommend.items)")
        candidates = [m for m in candidates if m not in USES_ENCODER]
    if rc.method == "auto":
        candidates = [m for m in candidates if m not in ("als", "bpr") or _has_implicit()]
    vectors = embed_items(ctx, catalog, items) if any(m in USES_ENCODER for m in candidates) else None

    train_history = histories(frames["train"], catalog)
    x_train = seen_matrix(train_history, n_items)
    val_targets = targets_of(frames["validation"], catalog)
    table: list[dict] = []
    blend = rc.blend_weight
    for method in candidates:
        started = time.perf_counter()
        model = build(method, rc, seed=seed).fit(x_train, item_vectors=vectors, segments=user_segment)
        model.arrays.update(Popular().fit(x_train, segments=user_segment).arrays)
        runtime = _runtime(model, method, catalog, train_history, user_segment, rc, config)
        if method == "hybrid" and rc.blend_weight is None:
            blend, scores_by_blend = _choose_blend(model, runtime, x_train, val_targets, rc, seed)
            metrics = scores_by_blend[blend]
        else:
            metrics = evaluate_rankings(runtime.score_users, x_train, val_targets, rc.k, seed=seed)
        row = {"method": method, **{m: metrics[m] for m in (f"hr@{k}", f"ndcg@{k}", f"recall@{k}", f"map@{k}")}}
        row["seconds"] = round(time.perf_counter() - started, 2)
        if method == "hybrid":
            row["blend_weight"] = blend
        table.append(row)
        logger.info("validation %-8s HR@%d %.4f  NDCG@%d %.4f  (%.1f s)", method, k, row[f"hr@{k}"], k, row[f"ndcg@{k}"], row["seconds"])
    best = max(table, key=lambda r: r[f"ndcg@{k}"])
    chosen = best["method"]
    logger.info("refitting %s on train + validation", chosen)
    full_history = _merge(train_history, histories(frames["validation"], catalog))
    x_full = seen_matrix(full_history, n_items)
    final_rc = rc.model_copy(update={"blend_weight": blend}) if chosen == "hybrid" else rc
    model = build(chosen, final_rc, seed=seed).fit(x_full, item_vectors=vectors, segments=user_segment)
    model.arrays.update(Popular().fit(x_full, segments=user_segment).arrays)
    meta = _meta(chosen, rc, config, blend)
    Recommender.save(out_dir, model, meta, catalog, full_history, user_segment)
    info = {
        "method": chosen,
        f"best_validation_ndcg@{k}": best[f"ndcg@{k}"],
        "validation_table": table,
        "items": n_items,
        "users": len(catalog.users),
    }
    if chosen == "hybrid":
        info["blend_weight"] = blend
    return info


def _has_implicit() -> bool:
    import importlib.util

    found = importlib.util.find_spec("implicit") is not None
    if not found:
        logger.warning("recommend.method auto: als and bpr skipped (pip install 'tuneforge[recommend]' for them)")
    return found


def _merge(a: list[np.ndarray], b: list[np.ndarray]) -> list[np.ndarray]:
    return [np.concatenate([x, y]) for x, y in zip(a, b)]


def _settings(rc, blend) -> dict:
    keys = ("factors", "regularization", "iterations", "ease_lambda", "recency_half_life", "neighbours", "max_length", "k")
    return {**{key: getattr(rc, key) for key in keys}, "blend_weight": blend}


def _meta(method: str, rc, config, blend) -> ModelMeta:
    return ModelMeta(
        kind="recommender",
        labels=[],
        method=method,
        base_model=config.model.name if method in USES_ENCODER else None,
        max_length=rc.max_length,
        transforms=[],
        task="recommend",
        extra={"settings": _settings(rc, blend)},
    )


def _runtime(model, method, catalog, history, user_segment, rc, config) -> Recommender:
    meta = _meta(method, rc, config, rc.blend_weight)
    indptr = np.cumsum([0, *[len(h) for h in history]]).astype(np.int64)
    items = np.concatenate(history) if history else np.zeros(0, np.int64)
    return Recommender(model, meta, catalog, indptr, items, user_segment)


def _choose_blend(model, runtime, x_train, targets, rc, seed) -> tuple[float, dict[float, dict]]:
    """The content share with the best validation NDCG@10 (ties go to the smaller share)."""
    k = main_k(rc.k)
    results = {}
    for weight in BLEND_GRID:
        model.arrays["blend"] = np.array([weight], dtype=np.float32)
        results[weight] = evaluate_rankings(runtime.score_users, x_train, targets, rc.k, seed=seed)
    best = max(BLEND_GRID, key=lambda w: (results[w][f"ndcg@{k}"], -w))
    model.arrays["blend"] = np.array([best], dtype=np.float32)
    logger.info("hybrid: content share %.2f chosen on validation", best)
    return best, results
