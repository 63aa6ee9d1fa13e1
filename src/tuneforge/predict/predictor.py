"""`Predictor`: load a trained run once, replay its text transforms, score texts in batches.

What the scores mean comes from the model's task (`tuneforge.json`): label
probabilities for classify, per-label probabilities and thresholds for
multilabel, character spans for entities.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tuneforge.data.transforms import apply_transforms, transform
from tuneforge.errors import ConfigError
from tuneforge.models.artifact import ModelMeta
from tuneforge.predict.backends import Backend, load_backend
from tuneforge.predict.chunking import LONG_TEXT_MODES, average_by_owner, split_windows, window_counts
from tuneforge.rundir import find_model_dir
from tuneforge.tasks import get_task

__all__ = ["Predictor", "find_model_dir"]


class Predictor:
    """Scores texts with a saved model; text is transformed exactly as in training."""

    def __init__(
        self, backend: Backend, meta: ModelMeta, *, model_dir: Path, task=None, batch_size: int = 32, long_texts: str = "truncate"
    ):
        if long_texts not in LONG_TEXT_MODES:
            raise ConfigError(f"long_texts must be one of {', '.join(LONG_TEXT_MODES)}, got {long_texts!r}")
        self.backend = backend
        self.meta = meta
        self.task = task or get_task(meta.task)
        self.model_dir = model_dir
        self.batch_size = batch_size
        self.long_texts = long_texts if self.task.chunkable else "truncate"
        for name in meta.transforms:  # load heavy transforms (PII redaction) now, not on the first request
            transform(name)

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        batch_size: int = 32,
        variant: str | None = None,
        threads: int | None = None,
        long_texts: str = "truncate",
    ) -> Predictor:
        """Load a run (or model folder); `variant` picks a compressed one ("original", "auto",
        "recommended" or a variant name), `threads` caps compute threads (default: every CPU this
        process may use), `long_texts` says whether texts longer than the model window are
        truncated or scored in chunks."""
        model_dir = find_model_dir(path, variant)
        meta = ModelMeta.read(model_dir)
        task = get_task(meta.task)
        reason = task.unservable(meta)
        if reason:
            raise ConfigError(f"{model_dir}: {reason}")
        if not task.serves_texts:
            raise ConfigError(f"{model_dir} is a {meta.task} model, which does not score texts; use `tuneforge {meta.task}`")
        backend = load_backend(model_dir, meta, auto_model=task.auto_model, threads=threads)
        return cls(backend, meta, model_dir=model_dir, task=task, batch_size=batch_size, long_texts=long_texts)

    @property
    def labels(self) -> list[str]:
        return list(self.meta.labels)

    def predict_raw(self, texts: Sequence[str] | str, *, progress: str | None = None, batch_size: int | None = None) -> Any:
        """The task's row-aligned scores for `texts` (probabilities for classify/multilabel, spans for entities)."""
        texts = _as_texts(texts)
        size = batch_size or self.batch_size
        if not texts:
            return self.task.empty_raw(self.meta)
        cleaned = self._clean(texts)
        tokenizer = self.backend.tokenizer
        if self.long_texts == "chunk" and tokenizer is not None:
            pieces, owners = split_windows(tokenizer, cleaned, max_length=self.meta.max_length)
            raw = self.task.infer(self.backend, pieces, self.meta, batch_size=size, progress=progress)
            return average_by_owner(raw, owners, len(cleaned))
        return self.task.infer(self.backend, cleaned, self.meta, batch_size=size, progress=progress)

    def predict_proba(self, texts: Sequence[str] | str, *, progress: str | None = None, batch_size: int | None = None) -> np.ndarray:
        """Probabilities, one row per text, columns in `self.labels` order (classify and multilabel)."""
        return self.predict_raw(texts, progress=progress, batch_size=batch_size)

    def predict(self, texts: Sequence[str] | str) -> list:
        return self.to_predictions(self.predict_raw(texts))

    def to_predictions(self, raw: Any) -> list:
        return self.task.predictions(raw, self.meta)

    def windows(self, texts: Sequence[str]) -> list[int]:
        """Model windows each text needs: 1 when it fits; more means it is truncated, or scored in that many chunks."""
        tokenizer = self.backend.tokenizer
        if tokenizer is None:  # tfidf reads the whole text
            return [1] * len(_as_texts(texts))
        return window_counts(tokenizer, self._clean(texts), max_length=self.meta.max_length)

    def truncated(self, texts: Sequence[str]) -> list[bool]:
        """Which texts lose their end: longer than the model window, and long_texts is "truncate"."""
        if self.long_texts == "chunk":
            return [False] * len(_as_texts(texts))
        return [n > 1 for n in self.windows(texts)]

    def _clean(self, texts: Sequence[str] | str) -> list[str]:
        return [apply_transforms(t, self.meta.transforms) for t in _as_texts(texts)]

    def batcher(self, *, max_batch_size: int = 32, max_wait_ms: float = 5.0, max_queue: int = 256):
        """A thread-safe micro-batcher over this predictor: the one the HTTP service uses.

        Concurrent `batcher.predict(texts)` calls from many threads are coalesced
        into shared forward passes; call `close()` when done.
        """
        from tuneforge.predict.batcher import MicroBatcher

        return MicroBatcher(self.predict_raw, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, max_queue=max_queue)


def _as_texts(texts: Sequence[str] | str) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    items = list(texts)
    bad = next((i for i, t in enumerate(items) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"texts[{bad}] must be a string, got {type(items[bad]).__name__}")
    return items
