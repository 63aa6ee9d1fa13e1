"""One self-contained HTML page per run (or several runs side by side): what a reviewer opens first.

Everything is inline — plots as base64 PNGs, styles in the page, no scripts, no fonts,
no CDN — so the file works offline, attached to an e-mail, on a phone. It gathers what
the run folder already holds: headline metrics, the training summary, data and cleaning
(and what redaction replaced), every plot in `eval/` and `compress/`, fairness slices,
the most confident errors (the first few explained: which words pushed the model to its
wrong answer, `tuneforge.analysis.report_explain`), cost, the config and the model card.
"""

from __future__ import annotations

import base64
import csv
import html
import json
from pathlib import Path

from tuneforge.analysis.report_explain import EXPLAINED, explained_errors
from tuneforge.atomic import atomic_write_text
from tuneforge.rundir import RunDir

REPORT_FILE = "report.html"
ERRORS_SHOWN = 10
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:1rem;color:#1d1d1f;line-height:1.45}
h1{font-size:1.5rem}h2{font-size:1.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.92rem}td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f6}.scroll{overflow-x:auto}img{max-width:100%;height:auto;border:1px solid #eee;margin:.3rem 0}
.runs{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:1rem}.small{color:#a15c00}pre{background:#f7f7f9;padding:.6rem;overflow-x:auto;font-size:.85rem}
.card{overflow-x:auto}.card h1{font-size:1.1rem}.card h2{font-size:1rem;border:0}
.why{border-left:3px solid #e65a28;padding-left:.6rem;margin:.8rem 0}.why p{margin:.2rem 0}mark{color:inherit;padding:0 .1rem;border-radius:2px}
"""


def _e(value) -> str:
    return html.escape(str(value))


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table><tr>{head}</tr>{body}</table></div>'


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img alt="{_e(path.stem)}" src="data:image/png;base64,{data}"><figcaption>{_e(path.parent.name)}/{_e(path.name)}</figcaption></figure>'


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _number(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else _e(value)


def _slices(slices: dict, columns: tuple[str, ...]) -> str:
    """One table per grouping with the task's per-group metrics (`Task.slice_columns`)."""
    parts = []
    for name, entry in slices.items():
        rows = [
            [
                _e(group),
                g["n"],
                *(_number(g.get(c)) for c in columns),
                '<span class="small">too small to judge</span>' if g.get("small") else "",
            ]
            for group, g in entry.get("groups", {}).items()
        ]
        gaps = ", ".join(f"{k} {v:.4f}" for k, v in entry.get("largest_gap", {}).items())
        parts.append(
            f"<h3>By {_e(name)}</h3><p>Largest gap: {_e(gaps or 'n/a')}</p>"
            + _table(["group", "rows", *(c.replace("_", " ") for c in columns), ""], rows)
        )
    return "".join(parts)


def _errors(run: RunDir, explained: int) -> str:
    path = run.eval_dir / "errors.csv"
    if not path.is_file():
        return ""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))[:ERRORS_SHOWN]
    if not rows:
        return ""
    columns = [c for c in rows[0] if c != "source"]
    table = _table(columns, [[_e(r[c])[:400] for c in columns] for r in rows])
    return "<h2>Most confident mistakes</h2>" + table + explained_errors(run.path, rows, limit=explained)


def _section(run: RunDir, explained: int = EXPLAINED) -> str:
    from markdown_it import MarkdownIt

    from tuneforge.analysis.card import training_lines
    from tuneforge.tasks import get_task

    info = run.info()
    task = get_task(info.get("task", "classify"))
    metrics = _json(run.eval_dir / "metrics.json")
    report = _json(run.path / "data_report.json")
    cost = _json(run.path / "cost.json")
    headline = task.headline(metrics) if metrics else {}
    parts = [f"<h2>{_e(run.name)}</h2>"]
    parts.append(
        _table(
            ["task", "method", "status", "data", "started"],
            [[_e(info.get(k, "")) for k in ("task", "method", "status", "data", "started")]],
        )
    )
    if info.get("superseded_by"):
        parts.append(f'<p class="small">Superseded by {_e(info["superseded_by"])}: {_e(info.get("superseded_reason", ""))}</p>')
    intervals = metrics.get("confidence_intervals", {}) if metrics else {}
    shown = [[_e(k), _number(v), _e("–".join(f"{x:.4f}" for x in intervals[k])) if k in intervals else ""] for k, v in headline.items()]
    parts.append("<h3>Results</h3>" + _table(["metric", "value", "95% bootstrap interval"], shown))
    lines = training_lines(info.get("train") or {})
    if lines:
        parts.append("<h3>Training</h3><ul>" + "".join(f"<li>{_e(line)}</li>" for line in lines) + "</ul>")
    files = report.get("files", {}).get("train", {})
    data_rows = [[_e(name), _e(s.get("rows")), _e(s.get("origin", ""))] for name, s in report.get("splits", {}).items()]
    parts.append("<h3>Data</h3>" + _table(["split", "rows", "origin"], data_rows))
    parts.append(f"<p>Removed while cleaning: {_e(files.get('removed', {}))}; modified: {_e(files.get('modified', {}))}</p>")
    if "redacted" in report:
        parts.append(f"<p>Personal data replaced: {_e(report['redacted'] or 'none found')}</p>")
    images = sorted(run.eval_dir.glob("*.png")) + sorted((run.path / "compress").glob("*.png"))
    if images:
        parts.append("<h3>Plots</h3>" + "".join(_image(p) for p in images))
    if isinstance(metrics.get("slices"), dict) and metrics["slices"] and task.slice_columns:
        parts.append("<h3>Slices</h3>" + _slices(metrics["slices"], task.slice_columns))
    # one label per text: multi-label and entity errors stay a plain table
    parts.append(_errors(run, explained if task.explainable and task.explains == "label" else 0))
    if cost:
        parts.append("<h3>Cost</h3>" + _table(["", ""], [[_e(k), _number(v)] for k, v in cost.items()]))
    card = run.path / "model_card.md"
    if card.is_file():
        rendered = MarkdownIt("commonmark", {"html": False}).enable("table").render(card.read_text(encoding="utf-8"))
        parts.append(f'<h3>Model card</h3><div class="card">{rendered}</div>')
    config = run.path / "config.yaml"
    if config.is_file():
        parts.append(f"<details><summary>Config</summary><pre>{_e(config.read_text(encoding='utf-8'))}</pre></details>")
    return "".join(parts)


def _comparison(runs: list[RunDir]) -> str:
    from tuneforge.tasks import get_task

    columns: dict[str, None] = {}
    values = []
    for run in runs:
        info = run.info()
        metrics = _json(run.eval_dir / "metrics.json")
        head = get_task(info.get("task", "classify")).headline(metrics) if metrics else {}
        cost = _json(run.path / "cost.json")
        row = {**head, "wall_seconds": cost.get("wall_seconds"), "peak_rss_mb": cost.get("peak_rss_mb")}
        columns.update(dict.fromkeys(row))
        values.append((run, info, row))
    rows = [[_e(run.name), _e(info.get("method", ""))] + [_number(row.get(c, "")) for c in columns] for run, info, row in values]
    return "<h2>Side by side</h2>" + _table(["run", "method", *columns], rows)


def build_report(run_dirs: list[str | Path], *, explained: int = EXPLAINED) -> str:
    """The page; `explained` of each run's most confident mistakes get their words highlighted (0: none)."""
    runs = [RunDir.open(p) for p in run_dirs]
    title = " vs ".join(r.name for r in runs)
    body = (_comparison(runs) if len(runs) > 1 else "") + (
        f'<div class="runs">{"".join(f"<section>{_section(r, explained)}</section>" for r in runs)}</div>'
        if len(runs) > 1
        else _section(runs[0], explained)
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>tuneforge report: {_e(title)}</title><style>{STYLE}</style></head><body><h1>tuneforge report: {_e(title)}</h1>{body}</body></html>\n"
    )


def write_report(run_dirs: list[str | Path], output: str | Path | None = None, *, explained: int = EXPLAINED) -> Path:
    """The report of one run (default `RUN/report.html`) or of several side by side (give `output`)."""
    target = Path(output) if output else RunDir.open(run_dirs[0]).path / REPORT_FILE
    return atomic_write_text(target, build_report(run_dirs, explained=explained))
