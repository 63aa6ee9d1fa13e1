"""Size, latency, throughput, accuracy and agreement of one model variant, on real texts."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tuneforge.tasks.base import label_index
from tuneforge.tasks.classify.metrics import selection_scores

WEIGHT_SUFFIXES = (".safetensors", ".onnx", ".onnx.data")
THROUGHPUT_BATCH = 32


@dataclass
class Measurement:
    row: dict  # one row of the trade-off table
    probabilities: np.ndarray  # on the measured texts, for the agreement of later variants


def weights_size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.iterdir() if p.name.endswith(WEIGHT_SUFFIXES)) / 2**20


def measure_variant(
    predictor, texts: list[str], labels: list[str], reference: np.ndarray | None, *, latency_texts: int = 100
) -> Measurement:
    """Latency at batch 1 (p50/p95), throughput at batch 32, quality on `texts`, agreement with `reference`."""
    predictor.predict_proba(texts[:8])  # warm-up: first calls allocate
    latencies = []
    for text in texts[:latency_texts]:
        started = time.perf_counter()
        predictor.predict_proba([text])
        latencies.append(time.perf_counter() - started)
    started = time.perf_counter()
    probs = predictor.predict_proba(texts, batch_size=THROUGHPUT_BATCH)
    seconds = time.perf_counter() - started
    index = label_index(predictor.labels)
    scores = selection_scores(np.array([index[x] for x in labels]), probs.argmax(1))
    row = {
        "size_mb": round(weights_size_mb(predictor.model_dir), 2),
        "latency_p50_ms": round(float(np.percentile(latencies, 50)) * 1000, 2),
        "latency_p95_ms": round(float(np.percentile(latencies, 95)) * 1000, 2),
        "throughput_texts_per_s": round(len(texts) / seconds, 1),
        "accuracy": scores["accuracy"],
        "macro_f1": scores["macro_f1"],
        "backend": predictor.backend.name,
        "agreement": float((probs.argmax(1) == reference.argmax(1)).mean()) if reference is not None else 1.0,
    }
    return Measurement(row=row, probabilities=probs)
