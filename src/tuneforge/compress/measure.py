"""Size, latency, throughput, accuracy and agreement of one model variant, on real texts."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from tuneforge.predict.predictor import Predictor

WEIGHT_SUFFIXES = (".safetensors", ".onnx", ".onnx.data")


def weights_size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.iterdir() if p.name.endswith(WEIGHT_SUFFIXES)) / 2**20


def measure_variant(
    predictor: Predictor, texts: list[str], labels: list[str], reference: np.ndarray | None, *, latency_texts: int = 100
) -> dict:
    """Latency at batch 1 (p50/p95), throughput at batch 32, quality on `texts`, agreement with `reference`."""
    predictor.predict_proba(texts[:8])  # warm-up: first calls allocate
    latencies = []
    for text in texts[:latency_texts]:
        started = time.perf_counter()
        predictor.predict_proba([text])
        latencies.append(time.perf_counter() - started)
    predictor.batch_size = 32
    started = time.perf_counter()
    probs = predictor.predict_proba(texts)
    seconds = time.perf_counter() - started
    predicted = [predictor.labels[i] for i in probs.argmax(1)]
    result = {
        "size_mb": round(weights_size_mb(predictor.model_dir), 2),
        "latency_p50_ms": round(float(np.percentile(latencies, 50)) * 1000, 2),
        "latency_p95_ms": round(float(np.percentile(latencies, 95)) * 1000, 2),
        "throughput_texts_per_s": round(len(texts) / seconds, 1),
        "accuracy": float(accuracy_score(labels, predicted)),
        "macro_f1": float(f1_score(labels, predicted, average="macro", zero_division=0)),
        "backend": predictor.backend.name,
    }
    result["agreement"] = float((probs.argmax(1) == reference.argmax(1)).mean()) if reference is not None else 1.0
    return result, probs
