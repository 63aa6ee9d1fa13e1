"""`compress_run`: build variants of a run's model, measure them side by side, recommend one.

Writes `RUN_DIR/compress/<variant>/` folders, `tradeoffs.json` (one row per
variant, the original included) and `tradeoffs.png`. The recommendation is the
fastest variant whose test accuracy is within `accuracy_budget` points of the
original.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tuneforge.atomic import atomic_write_json
from tuneforge.compress.measure import measure_variant
from tuneforge.compress.settings import CompressSettings
from tuneforge.compress.students import FASTER_STUDENTS, STUDENTS, Teacher
from tuneforge.compress.variants import RUNTIMES, CompressionError, export_onnx, quantize_onnx, torch_int8
from tuneforge.errors import ConfigError, RunError
from tuneforge.models.artifact import ModelMeta
from tuneforge.plots import pyplot, save_figure
from tuneforge.predict.predictor import Predictor
from tuneforge.rundir import RunDir
from tuneforge.tasks import get_task

logger = logging.getLogger(__name__)
PARITY_TEXTS = 256


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


DEFAULT_METHODS = ["onnx", "int8"]


def compress_run(run_dir: str | Path, *, methods: list[str] | None = None, settings: CompressSettings | None = None) -> dict:
    """Build and measure the requested variants (None: the task's defaults); returns the trade-off report."""
    settings = settings or CompressSettings()
    run = RunDir.open(run_dir)
    for name in run.remove_stale_temporaries():
        logger.info("removed %s, left by an interrupted run", name)
    model_dir = run.model_for("original")
    meta = ModelMeta.read(model_dir)
    task = get_task(meta.task)
    own = task.compressor()
    if own is not None:
        report = own(run, methods, settings)  # None: the task's own defaults
        _refresh_report(run)
        return report
    plan = plan_variants(parse_methods(DEFAULT_METHODS if methods is None else methods))
    if not task.compressible:
        raise CompressionError(
            f"{run.path}: compression works on tasks whose models it can measure (classify); this is a {meta.task!r} run"
        )
    if meta.kind != "transformer":
        kept = (
            " that kept a baseline over its fine-tune (train.keep=best; set train.keep=fine-tuned to keep the fine-tune)"
            if meta.extra.get("kept_over")
            else ""
        )
        raise CompressionError(
            f"{run.path}: compression works on full and lora runs; this is a {meta.method!r} run{kept} ({meta.kind} model)"
        )
    _, frame = run.evaluation_split()
    texts, labels = frame["text"].tolist(), frame["label"].tolist()
    teacher = _teacher(run, model_dir, meta, settings) if any(m in STUDENTS for _, m, _ in plan) else None
    folders = {"original": model_dir}
    built = {}
    for name, method, base in plan:
        logger.info("building %s", name)
        onnx_dir = run.variant_dir("onnx" if base == "original" else f"{base}-onnx")  # what int8 quantizes
        built[name] = _build(method, folders[base], run.variant_dir(name), onnx_dir, texts, teacher)
        folders[name] = run.variant_dir(name)
    original = measure_variant(Predictor.load(model_dir), texts, labels, None, latency_texts=settings.latency_texts)
    rows = [{"variant": "original", **original.row}]
    for name, _, _ in plan:
        measured = measure_variant(
            Predictor.load(folders[name]), texts, labels, original.probabilities, latency_texts=settings.latency_texts
        )
        rows.append({"variant": name, **measured.row, **built[name]})
        logger.info("%s", rows[-1])
    report = {
        "run": run.info().get("method"),
        "split_rows": len(texts),
        "accuracy_budget_points": settings.accuracy_budget,
        "settings": settings.model_dump(),
        "variants": rows,
        "recommended": recommend(rows, settings.accuracy_budget),
    }
    atomic_write_json(run.tradeoffs_file, report)
    plot_tradeoffs(rows, report["recommended"], run.tradeoffs_plot)
    _refresh_report(run)
    return report


def _refresh_report(run: RunDir) -> None:
    from tuneforge.analysis.report import write_report

    write_report([run.path])  # the run's page now shows the trade-offs too


def _teacher(run: RunDir, model_dir: Path, meta: ModelMeta, settings: CompressSettings) -> Teacher:
    frame = run.read_split("train")
    if frame is None or frame.empty:
        raise RunError(f"{run.path}: no saved train split; distillation and pruning recovery learn from it")
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
    plt = pyplot()
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
