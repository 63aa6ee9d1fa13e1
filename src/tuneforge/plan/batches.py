"""The padded length of every batch a run will compute, simulated from the texts' token lengths.

A step's cost depends on its batch's longest text (everything is padded to it), so
what matters is how texts fall into batches: the training sampler groups them by
length in shuffled mega-batches (as `transformers`' `LengthGroupedSampler` does,
50 batches at a time) or shuffles them plainly; the Trainer evaluates in file order;
tuneforge's own forward passes (probe embeddings, predictions) sort by length.
"""

from __future__ import annotations

import numpy as np

MEGABATCH_BATCHES = 50  # transformers' LengthGroupedSampler default (mega_batch_mult)


def training_batches(lengths: np.ndarray, batch_size: int, *, grouped: bool, seed: int = 0) -> np.ndarray:
    """Longest length of each training batch of one epoch."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    if grouped:
        size = MEGABATCH_BATCHES * batch_size
        order = np.concatenate([sorted(order[i : i + size], key=lambda j: -lengths[j]) for i in range(0, len(order), size)] or [order])
    return _maxima(lengths[order], batch_size)


def file_order_batches(lengths: np.ndarray, batch_size: int) -> np.ndarray:
    return _maxima(lengths, batch_size)


def sorted_batches(lengths: np.ndarray, batch_size: int) -> np.ndarray:
    return _maxima(np.sort(lengths)[::-1], batch_size)


def _maxima(lengths: np.ndarray, batch_size: int) -> np.ndarray:
    if len(lengths) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.arange(0, len(lengths), batch_size)
    return np.maximum.reduceat(np.asarray(lengths, dtype=np.int64), starts)


BUCKET_BATCHES = 50  # lstm: texts are sorted by length within windows of this many batches, then batched


def length_batches(lengths: list[int], batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Row indices per batch, as the lstm method trains (and the planner times it): shuffled, sorted by length
    within large windows, batch order shuffled."""
    order = rng.permutation(len(lengths))
    window = batch_size * BUCKET_BATCHES
    batches = []
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort([lengths[i] for i in chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]
