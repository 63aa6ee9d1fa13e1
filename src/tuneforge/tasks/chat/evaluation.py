"""Scoring a bot on evaluation queries: retrieval ranks, answer quality, groundedness, handoff and speed.

`evaluate_bot` is shared by the task's evaluation (`eval/metrics.json` of a run) and
`benchmarks/chat_quality.py`, which scores one run's bot in several variants side by side.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from tuneforge.tasks.chat.build import expected_sources, retrieval_table, source_maps
from tuneforge.tasks.chat.metrics import first_hit_rank, groundedness, handoff_scores, ranking_scores, rouge_l, token_f1

logger = logging.getLogger(__name__)


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def answer_records(bot, frame: pd.DataFrame, *, max_tokens: int | None = None, progress: str | None = "answering") -> list[dict]:
    """One record per query: the answer, its mode and sources, scores against the reference, timings."""
    maps = source_maps(bot)
    records = []
    rows = frame.to_dict(orient="records")
    for row in tqdm(rows, desc=progress, disable=progress is None, leave=False):
        answer = bot.answer([{"role": "user", "content": row["text"]}], max_tokens=max_tokens)
        reference = row.get("label") if isinstance(row.get("label"), str) else None
        cited = [_full_text(bot, s) for s in answer.sources]
        record = {
            "query": row["text"],
            "kind": row.get("kind"),
            "reference": reference,
            "expected_sources": sorted(expected_sources(row, *maps)),
            "answer": answer.text,
            "mode": answer.mode,
            "handoff": answer.handoff,
            "reason": answer.reason,
            "sources": [{k: s[k] for k in ("source", "score") if k in s} for s in answer.sources],
            "best_score": answer.best_score,
            "seconds": answer.timings.get("seconds"),
            "ttft_seconds": answer.timings.get("ttft_seconds"),
            "tokens_per_s": answer.timings.get("tokens_per_s"),
            "completion_tokens": answer.usage.get("completion_tokens", 0),
        }
        if reference is not None:
            # a handoff answers nothing: it scores 0, not the overlap of the handoff message with the reference
            record["token_f1"] = 0.0 if answer.handoff else token_f1(answer.text, reference)
            record["rouge_l"] = 0.0 if answer.handoff else rouge_l(answer.text, reference)
        if not answer.handoff:
            record["groundedness"] = groundedness(answer.text, cited)
        records.append(record)
    return records


def _full_text(bot, source: dict) -> str:
    entry = bot.entries.get(source.get("id"))
    if entry is None:
        return source.get("text", "")
    return f"{entry.text} {entry.answer}" if entry.kind == "faq" else entry.text


def summarize(records: list[dict], ranks: list[int | None] | None = None) -> dict:
    """The metrics of a set of answer records (and retrieval ranks of its in-scope queries)."""
    out: dict = {"n": len(records)}
    if ranks is not None:
        out.update(ranking_scores(ranks))
    scored = [r for r in records if "token_f1" in r]
    out["token_f1"] = _mean(r["token_f1"] for r in scored)
    out["rouge_l"] = _mean(r["rouge_l"] for r in scored)
    out["groundedness"] = _mean(r.get("groundedness") for r in records if r["mode"] == "generated")
    out["groundedness_all_answers"] = _mean(r.get("groundedness") for r in records)
    kinds = [r.get("kind") for r in records]
    if "out_of_scope" in kinds:
        out.update(handoff_scores([k == "out_of_scope" for k in kinds], [r["handoff"] for r in records]))
    out["modes"] = {m: sum(r["mode"] == m for r in records) for m in ("faq", "generated", "handoff")}
    seconds = [r["seconds"] for r in records if r["seconds"] is not None]
    out["latency_mean_s"] = _mean(seconds)
    out["latency_p50_s"] = float(np.percentile(seconds, 50)) if seconds else None
    out["latency_p95_s"] = float(np.percentile(seconds, 95)) if seconds else None
    generated = [r for r in records if r["mode"] == "generated"]
    out["ttft_mean_s"] = _mean(r["ttft_seconds"] for r in generated)
    out["tokens_per_s"] = _mean(r["tokens_per_s"] for r in generated)
    out["completion_tokens_mean"] = _mean(r["completion_tokens"] for r in generated)
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}


def evaluate_bot(bot, frame: pd.DataFrame, *, max_tokens: int | None = None, progress: str | None = "answering") -> tuple[dict, list[dict]]:
    """(metrics, per-query records): retrieval over in-scope queries with an expected source, answers over all."""
    table = retrieval_table(bot, frame)
    ranks = [first_hit_rank(row.sources, row.expected) for row in table.itertuples() if row.expected]
    records = answer_records(bot, frame, max_tokens=max_tokens, progress=progress)
    for record, (_, row) in zip(records, table.iterrows()):
        record["retrieval_rank"] = first_hit_rank(row["sources"], row["expected"]) if row["expected"] else None
    metrics = summarize(records, ranks)
    metrics["by_kind"] = {
        kind: summarize(
            [r for r in records if r["kind"] == kind], [r["retrieval_rank"] for r in records if r["kind"] == kind and r["expected_sources"]]
        )
        for kind in sorted({r["kind"] for r in records if r["kind"]})
    }
    return metrics, records
