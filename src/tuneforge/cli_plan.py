"""`tuneforge plan`: what each method will take on this data and machine, before anything is trained."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from tuneforge.cli_common import SetOption, UsageProblem, app, err, out


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


@app.command()
def plan(
    config: Annotated[Path, typer.Argument(help="YAML run config (the data and model to plan for).")],
    overrides: SetOption = None,
    budget: Annotated[Optional[str], typer.Option(help="Time you can spend, e.g. 30m, 1.5h, 90s: says which methods fit.")] = None,
    methods: Annotated[Optional[str], typer.Option(help="Comma-separated methods to plan (default: all the task has).")] = None,
    recalibrate: Annotated[bool, typer.Option(help="Measure this machine again instead of using the cached calibration.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    gpus: Annotated[
        Optional[Path],
        typer.Option(help="GPU table (TOML) for the GPU projection; default ~/.config/tuneforge/gpus.toml, else the bundled examples."),
    ] = None,
) -> None:
    """Predict wall time, CPU time, peak memory and cost of each method before training; nothing is trained.

    Transformer methods are also projected onto the GPU types of an editable table (not measured: docs/budget.md)."""
    from tuneforge.config import load_config
    from tuneforge.durations import parse_duration
    from tuneforge.plan import make_plan
    from tuneforge.plan.gpus import load_gpu_table

    try:
        budget_s = parse_duration(budget) if budget else None
    except ValueError as exc:
        raise UsageProblem(f"--budget: {exc}") from None
    chosen = [m.strip() for m in methods.split(",") if m.strip()] if methods else None
    table = load_gpu_table(gpus)
    result = make_plan(
        load_config(config, overrides), methods=chosen, budget_seconds=budget_s, refresh=recalibrate, progress=err.print, gpu_table=table
    )
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
        return
    rows = result.data["rows"]
    lengths = result.data.get("train_tokens")
    err.print(
        f"data: {', '.join(f'{k} {v}' for k, v in rows.items())} rows, {result.data['labels']} labels"
        + (f"; train tokens mean {lengths['mean']}, p99 {lengths['p99']}" if lengths else "")
    )
    title = f"plan (budget {_duration(budget_s)})" if budget_s else "plan"
    table = Table("method", "epochs", "wall time", "CPU time", "peak memory", "cost (USD)", "fits", "expected", title=title)
    for m in result.methods:
        fits = "no: memory" if not m.fits_memory else {None: "-", True: "yes", False: "no: time"}[m.fits_budget]
        expected = f"{m.expected['metric']} {m.expected['value']:.3f} (past run)" if m.expected else "-"
        epochs = "-" if m.epochs is None else f"{m.epochs:g}"
        table.add_row(
            m.method,
            epochs,
            _duration(m.wall_seconds),
            _duration(m.cpu_seconds),
            f"{m.peak_rss_mb:.0f} MB",
            f"{m.cost_usd:.4f}",
            fits,
            expected,
        )
    out.print(table)
    for m in result.methods:
        for note in m.notes:
            err.print(f"{m.method}: {note}")
    if budget_s:
        fitting = result.fitting()
        err.print(f"fits the budget: {', '.join(fitting) if fitting else 'none — raise the budget, cut rows or max_length'}")
    _print_gpu_projection(result)


def _print_gpu_projection(result) -> None:
    """One row per GPU type, one column per transformer method: time and cost, or why it does not fit."""
    projected = [m for m in result.methods if m.gpus]
    if not projected or result.gpu_projection is None:
        return
    assumed = result.gpu_projection["assumptions"]
    table = Table(
        "GPU",
        "$/h",
        *(f"{m.method} (needs {m.gpus[0]['memory_gb']:.1f} GB)" for m in projected),
        title=f"GPU {result.gpu_projection['label']}: {assumed['efficiency']:.0%} of the dense bf16/fp16 peak assumed",
    )
    for row, gpu in enumerate(projected[0].gpus):
        cells = []
        for m in projected:
            p = m.gpus[row]
            cell = f"{_duration(p['wall_seconds'])}, ${p['cost_usd']:.4f}"
            if not p["fits_memory"]:
                cell = "no: memory"
            elif p["fits_budget"] is False:
                cell += " (over budget)"
            cells.append(cell)
        table.add_row(gpu["gpu"], f"{gpu['usd_per_hour']:.2f}", *cells)
    out.print(table)
    err.print(f"GPU table: {result.gpu_projection['table']} (edit a copy, pass it with --gpus; docs/budget.md)")
