"""`Predictor`: load a trained run once, score texts in batches, return labels with probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tuneforge.data.clean import normalize_text
from tuneforge.errors import ConfigError, RunError
from tuneforge.models.artifact import META_FILE, ModelMeta
from tuneforge.predict.backends import Backend, load_backend
from tuneforge.predict.chunking import LONG_TEXT_MODES, average_by_owner, split_windows, window_counts


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float
    probabilities: dict[str, float]


def find_model_dir(path: str | Path, variant: str | None = None) -> Path:
    """Accept a run directory or its `model/` folder.

    `variant`: "original", a compressed variant name ("onnx", "int8", ...),
    "recommended" (from compress/tradeoffs.json), or "auto" (recommended when
    the run was compressed, else original).
    """
    path = Path(path)
    if variant not in (None, "original"):
        return _variant_dir(path, variant)
    for candidate in (path / "model", path):
        if (candidate / META_FILE).is_file():
            return candidate
    if not path.exists():
        raise RunError(f"run directory not found: {path}")
    raise RunError(
        f"{path} has no trained model (no model/{META_FILE}); the run may not have finished — try `tuneforge train --resume {path}`"
    )


def _variant_dir(run_dir: Path, variant: str) -> Path:
    import json

    compress = run_dir / "compress"
    if variant in ("auto", "recommended"):
        report = compress / "tradeoffs.json"
        if not report.is_file():
            if variant == "auto":
                return find_model_dir(run_dir)
            raise RunError(f"{run_dir} has no compress/tradeoffs.json; run `tuneforge compress {run_dir}` first")
        variant = json.loads(report.read_text(encoding="utf-8"))["recommended"]
        if variant == "original":
            return find_model_dir(run_dir)
    folder = compress / variant
    if not (folder / META_FILE).is_file():
        available = sorted(p.name for p in compress.iterdir() if (p / META_FILE).is_file()) if compress.is_dir() else []
        raise RunError(f"{run_dir}: no compressed variant {variant!r} (available: {', '.join(['original', *available])})")
    return folder


class Predictor:
    """Scores texts with a saved model; text is normalised exactly as in training."""

    def __init__(self, backend: Backend, meta: ModelMeta, *, model_dir: Path, batch_size: int = 32, long_texts: str = "truncate"):
        if long_texts not in LONG_TEXT_MODES:
            raise ConfigError(f"long_texts must be one of {', '.join(LONG_TEXT_MODES)}, got {long_texts!r}")
        self.backend = backend
        self.meta = meta
        self.model_dir = model_dir
        self.batch_size = batch_size
        self.long_texts = long_texts

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
        """Load a run (or model folder); `variant` picks a compressed one (see `find_model_dir`),
        `threads` caps compute threads (default: every CPU this process may use), `long_texts`
        says whether texts longer than the model window are truncated or scored in chunks."""
        model_dir = find_model_dir(path, variant)
        meta = ModelMeta.read(model_dir)
        backend = load_backend(model_dir, meta, threads=threads)
        return cls(backend, meta, model_dir=model_dir, batch_size=batch_size, long_texts=long_texts)

    @property
    def labels(self) -> list[str]:
        return list(self.meta.labels)

    def predict_proba(self, texts: Sequence[str] | str, *, progress: str | None = None) -> np.ndarray:
        """Probabilities, one row per text, columns in `self.labels` order."""
        texts = _as_texts(texts)
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        cleaned = self._clean(texts)
        tokenizer = getattr(self.backend, "tokenizer", None)
        if self.long_texts == "chunk" and tokenizer is not None:
            pieces, owners = split_windows(tokenizer, cleaned, max_length=self.meta.max_length)
            probs = self.backend.predict_proba(pieces, batch_size=self.batch_size, progress=progress)
            return average_by_owner(probs, owners, len(cleaned))
        return self.backend.predict_proba(cleaned, batch_size=self.batch_size, progress=progress)

    def windows(self, texts: Sequence[str]) -> list[int]:
        """Model windows each text needs: 1 when it fits; more means it is truncated, or scored in that many chunks."""
        tokenizer = getattr(self.backend, "tokenizer", None)
        if tokenizer is None:  # tfidf reads the whole text
            return [1] * len(_as_texts(texts))
        return window_counts(tokenizer, self._clean(texts), max_length=self.meta.max_length)

    def truncated(self, texts: Sequence[str]) -> list[bool]:
        """Which texts lose their end: longer than the model window, and long_texts is "truncate"."""
        if self.long_texts == "chunk":
            return [False] * len(_as_texts(texts))
        return [n > 1 for n in self.windows(texts)]

    def _clean(self, texts: Sequence[str] | str) -> list[str]:
        return [normalize_text(t, strip_html=self.meta.strip_html) for t in _as_texts(texts)]

    def batcher(self, *, max_batch_size: int = 32, max_wait_ms: float = 5.0, max_queue: int = 256):
        """A thread-safe micro-batcher over this predictor: the one the HTTP service uses.

        Concurrent `batcher.predict(texts)` calls from many threads are coalesced
        into shared forward passes; call `close()` when done.
        """
        from tuneforge.serve.batcher import MicroBatcher

        return MicroBatcher(self.predict_proba, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, max_queue=max_queue)

    def predict(self, texts: Sequence[str] | str) -> list[Prediction]:
        return self.to_predictions(self.predict_proba(texts))

    def to_predictions(self, probs: np.ndarray) -> list[Prediction]:
        labels = self.labels
        out = []
        for row in probs:
            best = int(row.argmax())
            out.append(Prediction(label=labels[best], score=float(row[best]), probabilities={lab: float(p) for lab, p in zip(labels, row)}))
        return out


def _as_texts(texts: Sequence[str] | str) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    items = list(texts)
    bad = next((i for i, t in enumerate(items) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"texts[{bad}] must be a string, got {type(items[bad]).__name__}")
    return items
