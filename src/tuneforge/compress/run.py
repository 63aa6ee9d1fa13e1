"""`compress_run`: build variants of a run's model, measure them side by side, recommend one.

Writes `RUN_DIR/compress/<variant>/` folders, `tradeoffs.json` (one row per
variant, the original included) and `tradeoffs.png`. The recommendation is the
fastest variant whose test accuracy is within `accuracy_budget` points of the
original.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from tuneforge.compress.measure import measure_variant
from tuneforge.compress.variants import METHODS, PLANNED, CompressionError, export_onnx, quantize_onnx, torch_int8
from tuneforge.data.splits import read_split
from tuneforge.errors import ConfigError, RunError
from tuneforge.evaluate.plots import figure, save_figure
from tuneforge.models.artifact import ModelMeta
from tuneforge.predict.predictor import Predictor, find_model_dir
from tuneforge.runs import atomic_write_json, read_run_info, require_run_dir

logger = logging.getLogger(__name__)
PARITY_TEXTS = 256


def _test_split(run_dir: Path) -> pd.DataFrame:
    for split in ("test", "validation"):
        frame = read_split(run_dir, split)
        if frame is not None:
            return frame
    raise RunError(f"{run_dir}: no saved test or validation split to measure on")


def parse_methods(methods: list[str]) -> list[str]:
    unknown = [m for m in methods if m not in METHODS]
    planned = [m for m in unknown if m in PLANNED]
    if planned:
        raise ConfigError(f"--methods: {', '.join(planned)} not available yet; available: {', '.join(METHODS)}")
    if unknown:
        raise ConfigError(f"--methods: unknown {', '.join(unknown)}; available: {', '.join(METHODS)}")
    if "int8" in methods and "onnx" not in methods:
        methods = ["onnx", *methods]  # int8 quantizes the ONNX graph
    return list(dict.fromkeys(methods))


def compress_run(run_dir: str | Path, *, methods: list[str], accuracy_budget: float = 0.5) -> dict:
    """Build and measure the requested variants; returns the trade-off report."""
    run_dir = require_run_dir(run_dir)
    methods = parse_methods(methods)
    model_dir = find_model_dir(run_dir)
    meta = ModelMeta.read(model_dir)
    if meta.kind != "transformer":
        raise CompressionError(f"{run_dir}: compression works on full and lora runs; this is a {meta.method!r} run ({meta.kind} model)")
    frame = _test_split(run_dir)
    texts, labels = frame["text"].tolist(), frame["label"].tolist()
    out = run_dir / "compress"
    steps = {
        "onnx": lambda: export_onnx(model_dir, meta, out / "onnx", check_texts=texts[:PARITY_TEXTS]),
        "int8": lambda: quantize_onnx(out / "onnx", out / "int8"),
        "torch-int8": lambda: torch_int8(model_dir, meta, out / "torch-int8"),
    }
    built = {}
    for method in methods:
        logger.info("building %s", method)
        built[method] = steps[method]()
    rows = []
    original = Predictor.load(model_dir)
    measured, reference = measure_variant(original, texts, labels, None)
    rows.append({"variant": "original", **measured})
    for method in methods:
        predictor = Predictor.load(out / method)
        measured, _ = measure_variant(predictor, texts, labels, reference)
        rows.append({"variant": method, **measured, **{k: v for k, v in built[method].items() if k != "texts_checked"}})
    for row in rows:
        logger.info("%s", row)
    report = {
        "run": read_run_info(run_dir).get("method"),
        "split_rows": len(texts),
        "accuracy_budget_points": accuracy_budget,
        "variants": rows,
        "recommended": recommend(rows, accuracy_budget),
    }
    atomic_write_json(out / "tradeoffs.json", report)
    plot_tradeoffs(rows, report["recommended"], out / "tradeoffs.png")
    return report


def recommend(rows: list[dict], accuracy_budget: float) -> str:
    """The fastest variant whose accuracy is within `accuracy_budget` points of the original."""
    base = next(r for r in rows if r["variant"] == "original")["accuracy"]
    allowed = [r for r in rows if r["accuracy"] >= base - accuracy_budget / 100 - 1e-12]
    return max(allowed, key=lambda r: r["throughput_texts_per_s"])["variant"]


def plot_tradeoffs(rows: list[dict], recommended: str, path: Path) -> Path:
    plt = figure()
    fig, ax = plt.subplots(figsize=(6, 4))
    for row in rows:
        marker = "*" if row["variant"] == recommended else "o"
        ax.scatter(row["throughput_texts_per_s"], row["accuracy"] * 100, s=40 + row["size_mb"], marker=marker)
        ax.annotate(
            f"{row['variant']}\n{row['size_mb']:.0f} MB, p50 {row['latency_p50_ms']:.0f} ms",
            (row["throughput_texts_per_s"], row["accuracy"] * 100),
            textcoords="offset points",
            xytext=(6, 4),
            fontsize=8,
        )
    ax.set_xlabel("throughput at batch 32 (texts/s)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"Size / speed / accuracy (recommended: {recommended})")
    ax.margins(x=0.25, y=0.3)
    return save_figure(fig, plt, path)
