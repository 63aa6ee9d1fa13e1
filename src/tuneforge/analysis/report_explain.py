"""The report's explained mistakes: for the most confident errors, the words that pushed the model to its wrong answer.

It uses the cheapest faithful explainer the run allows — exact linear contributions for
tfidf, integrated gradients for transformer and head models when captum is installed,
else LIME when lime is — and starts no new explanation once a time budget is spent, so
writing the report stays quick; the page says which explainer ran and how long it took,
or why nothing was explained.
"""

from __future__ import annotations

import html
import importlib.util
import logging
import time
from pathlib import Path

logger = logging.getLogger(__name__)

EXPLAINED = 5  # mistakes explained per report
BUDGET_SECONDS = 15.0  # no new explanation starts after this (model loading included)
IG_STEPS = 16  # half the interactive default: enough to rank words, twice as fast
LIME_SAMPLES = 200
SHOWN_CHARS = 600
TOP_WORDS = 5
NAMES = {"linear": "exact linear contributions", "ig": f"integrated gradients ({IG_STEPS} steps)", "lime": f"LIME ({LIME_SAMPLES} samples)"}


def pick_method(predictor) -> tuple[str | None, str]:
    """(method, "") for this model, or (None, why not): the first of linear, ig, lime that it takes and that is installed."""
    from tuneforge.analysis.explain import methods_for

    offered = methods_for(predictor)
    for method, package in (("linear", None), ("ig", "captum"), ("lime", "lime")):
        if method in offered and (package is None or _installed(package)):
            return method, ""
    wanted = " or ".join(pkg for m, pkg in (("ig", "captum"), ("lime", "lime")) if m in offered)
    return None, f"not explained: a {predictor.meta.kind} model needs {wanted} (pip install 'tuneforge[explain]')"


def _installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def explained_errors(run_path: Path, rows: list[dict], *, limit: int = EXPLAINED, budget_s: float = BUDGET_SECONDS) -> str:
    """HTML for the first `limit` error rows (needs `text` and `predicted`), or a note saying why there is none."""
    rows = [r for r in rows[:limit] if r.get("text") and r.get("predicted")]
    if limit <= 0 or not rows:
        return ""
    from tuneforge.analysis.explain import explain
    from tuneforge.errors import TuneforgeError
    from tuneforge.predict.predictor import Predictor

    started = time.perf_counter()
    try:
        predictor = Predictor.load(run_path)
    except (TuneforgeError, OSError, ValueError) as exc:
        return _note(f"not explained: the model did not load ({exc})")
    method, why = pick_method(predictor)
    if method is None:
        return _note(why)
    parts, stopped = [], False
    for row in rows:
        if time.perf_counter() - started > budget_s:
            stopped = True
            break
        try:
            result = explain(predictor, row["text"], label=row["predicted"], method=method, steps=IG_STEPS, num_samples=LIME_SAMPLES)
        except (TuneforgeError, ImportError, RuntimeError, ValueError) as exc:
            logger.warning("report: a mistake not explained: %s", exc)
            return _note(f"not explained: {exc}")
        parts.append(_explained(row, result))
    spent = time.perf_counter() - started
    summary = f"{len(parts)} of the mistakes above, by {NAMES[method]}, in {spent:.2f} s (model loading included)"
    if stopped:
        summary += f"; stopped at the {budget_s:.0f} s budget"
    return (
        f"<h3>Why it was wrong</h3><p>Highlighted: the words that pushed the model towards its wrong answer (darker: stronger). {html.escape(summary)}.</p>"
        + "".join(parts)
    )


def _note(text: str) -> str:
    return f'<h3>Why it was wrong</h3><p class="small">{html.escape(text)}</p>'


def _explained(row: dict, result) -> str:
    pushing = sorted((w for w in result.words if w.attribution > 0), key=lambda w: -w.attribution)
    scale = pushing[0].attribution if pushing else 1.0
    text, cursor, shown = result.text, 0, []
    for w in result.words:
        if w.end > SHOWN_CHARS:
            break
        shown.append(html.escape(text[cursor : w.start]))
        strength = w.attribution / scale
        word = html.escape(text[w.start : w.end])
        if strength >= 0.1:  # the faintest words would only add noise
            shown.append(
                f'<mark style="background:rgba(230,90,40,{0.15 + 0.75 * strength:.2f})" title="{w.attribution:+.4f}">{word}</mark>'
            )
        else:
            shown.append(word)
        cursor = w.end
    shown.append(html.escape(text[cursor:SHOWN_CHARS]) + ("…" if len(text) > SHOWN_CHARS else ""))
    top = ", ".join(f"{html.escape(w.text)} ({w.attribution:+.3f})" for w in pushing[:TOP_WORDS]) or "none"
    head = f"true <b>{html.escape(row.get('true', '?'))}</b>, predicted <b>{html.escape(result.label)}</b> ({result.score:.3f})"
    return (
        f'<div class="why"><p>{head}</p><p>{"".join(shown)}</p><p class="small">Pushed towards {html.escape(result.label)}: {top}</p></div>'
    )
