"""What every `tuneforge` command shares: the Typer app, the consoles, usage errors, SIGTERM handling and result printing."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from tuneforge.errors import TuneforgeError


class UsageProblem(TuneforgeError):
    """Arguments that do not fit together (exit code 2, like other usage errors)."""


app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="From a labeled dataset to a measured, usable Transformer model on your CPU."
)
out = Console()
err = Console(stderr=True)
SetOption = Annotated[Optional[list[str]], typer.Option("--set", "-s", help="Override a setting: --set train.epochs=2 (repeatable).")]


@contextlib.contextmanager
def _exit_on_sigterm():
    """SIGTERM raises SystemExit(143) in the main thread, so `finally` and cleanup blocks run.

    The default action kills the process where it stands and leaves temporary files behind.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def tradeoff_table(title: str, columns: tuple[str, ...]) -> Table:
    """The compact table `tuneforge compress` prints: a variant column, then right-aligned figures."""
    from rich import box

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, title=title)
    table.add_column("variant", no_wrap=True)
    for header in columns:
        table.add_column(header, justify="right", no_wrap=True)
    return table


def _print_metrics(metrics: dict) -> None:
    from tuneforge.tasks import get_task

    task = get_task(metrics.get("task", "classify"))
    table = Table("metric", "value", title=f"evaluation on {metrics.get('split')} (n={metrics.get('n')})")
    for key, value in task.headline(metrics).items():
        table.add_row(key, f"{value:.4f}")
    for key in ("macro_precision", "macro_recall", "expected_calibration_error", "hamming_loss"):
        if key in metrics:
            table.add_row(key, f"{metrics[key]:.4f}")
    out.print(table)
    per_label = metrics.get("per_class") or metrics.get("per_label") or metrics.get("per_type") or {}
    if per_label:
        per_class = Table("label", "precision", "recall", "f1", "support", title="per label")
        for label, v in per_label.items():
            per_class.add_row(label, f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}", str(v["support"]))
        out.print(per_class)


def _print_result(result) -> None:
    from tuneforge.engine.distributed import is_main_process

    if not is_main_process():  # under torchrun rank 0 reports; the other ranks' logs are in RUN/logs/
        return
    _print_metrics(result.metrics)
    from tuneforge.analysis.card import training_lines

    for line in training_lines(getattr(result, "train_info", {}) or {}):
        out.print(line)
    cost = result.cost
    if cost:
        out.print(
            f"time {cost.get('wall_seconds')} s, peak memory {cost.get('peak_rss_mb')} MB, est. cost ${cost.get('estimated_cost_usd')}"
        )
    print(result.run_dir)
