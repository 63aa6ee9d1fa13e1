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
from tuneforge.compress.settings import CompressSettings
from tuneforge.compress.students import FASTER_STUDENTS, STUDENTS, Teacher
from tuneforge.compress.variants import RUNTIMES, CompressionError, export_onnx, quantize_onnx, torch_int8
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


STUDENT_ALIASES = {"prune": ["prune-heads", "prune-magnitude"]}
AVAILABLE = [*RUNTIMES, *STUDENTS, *STUDENT_ALIASES]


def parse_methods(methods: list[str]) -> list[str]:
    unknown = [m for m in methods if m not in AVAILABLE]
    if unknown:
        raise ConfigError(f"--methods: unknown {', '.join(unknown)}; available: {', '.join(AVAILABLE)}")
    if not methods:
        raise ConfigError(f"--methods: name at least one of {', '.join(AVAILABLE)}")
    expanded = [name for m in methods for name in STUDENT_ALIASES.get(m, [m])]
    if "int8" in expanded and "onnx" not in expanded:
        expanded.insert(expanded.index("int8"), "onnx")  # int8 quantizes the ONNX graph
    return list(dict.fromkeys(expanded))


def plan_variants(methods: list[str]) -> list[tuple[str, str, str]]:
    """(variant name, method, base) in build order: runtimes of the original, then each student and its runtimes."""
    runtimes = [m for m in methods if m in RUNTIMES]
    plan = [(m, m, "original") for m in runtimes]
    for student in (m for m in methods if m in STUDENTS):
        plan.append((student, student, "original"))
        if student in FASTER_STUDENTS:
            plan += [(f"{student}-{m}", m, student) for m in runtimes]
    return plan


def compress_run(run_dir: str | Path, *, methods: list[str], settings: CompressSettings | None = None) -> dict:
    """Build and measure the requested variants; returns the trade-off report."""
    settings = settings or CompressSettings()
    run_dir = require_run_dir(run_dir)
    plan = plan_variants(parse_methods(methods))
    model_dir = find_model_dir(run_dir)
    meta = ModelMeta.read(model_dir)
    if meta.kind != "transformer":
        raise CompressionError(f"{run_dir}: compression works on full and lora runs; this is a {meta.method!r} run ({meta.kind} model)")
    frame = _test_split(run_dir)
    texts, labels = frame["text"].tolist(), frame["label"].tolist()
    teacher = _teacher(run_dir, model_dir, meta, settings) if any(m in STUDENTS for _, m, _ in plan) else None
    out = run_dir / "compress"
    folders = {"original": model_dir}
    built = {}
    for name, method, base in plan:
        logger.info("building %s", name)
        onnx_dir = out / ("onnx" if base == "original" else f"{base}-onnx")  # what int8 quantizes
        built[name] = _build(method, folders[base], out / name, onnx_dir, texts, teacher)
        folders[name] = out / name
    rows = []
    original = Predictor.load(model_dir)
    measured, reference = measure_variant(original, texts, labels, None, latency_texts=settings.latency_texts)
    rows.append({"variant": "original", **measured})
    for name, _, _ in plan:
        measured, _ = measure_variant(Predictor.load(out / name), texts, labels, reference, latency_texts=settings.latency_texts)
        rows.append({"variant": name, **measured, **built[name]})
        logger.info("%s", rows[-1])
    report = {
        "run": read_run_info(run_dir).get("method"),
        "split_rows": len(texts),
        "accuracy_budget_points": settings.accuracy_budget,
        "settings": settings.model_dump(),
        "variants": rows,
        "recommended": recommend(rows, settings.accuracy_budget),
    }
    atomic_write_json(out / "tradeoffs.json", report)
    plot_tradeoffs(rows, report["recommended"], out / "tradeoffs.png")
    return report


def _teacher(run_dir: Path, model_dir: Path, meta: ModelMeta, settings: CompressSettings) -> Teacher:
    frame = read_split(run_dir, "train")
    if frame is None or frame.empty:
        raise RunError(f"{run_dir}: no saved train split; distillation and pruning recovery learn from it")
    return Teacher(model_dir, meta, frame["text"].tolist(), frame["label"].tolist(), settings)


def _build(method: str, source: Path, target: Path, onnx_dir: Path, texts: list[str], teacher: Teacher | None) -> dict:
    if method in STUDENTS:
        return STUDENTS[method](teacher, target)
    if method == "onnx":
        return export_onnx(source, ModelMeta.read(source), target, check_texts=texts[:PARITY_TEXTS])
    if method == "int8":
        return quantize_onnx(onnx_dir, target)
    return torch_int8(source, ModelMeta.read(source), target)


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
