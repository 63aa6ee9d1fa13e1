"""Entity-level precision / recall / F1: a predicted entity counts only when its type and both
character offsets match a true one (seqeval's chunk-level scoring when spans fall on word boundaries)."""

from __future__ import annotations

from collections import Counter


def entity_metrics(gold: list[list[dict]], predicted: list[list[dict]], types: list[str]) -> dict:
    """Micro and macro (over types) P/R/F1 and per-type figures with support (true entities)."""
    tp, fp, fn = Counter(), Counter(), Counter()
    for true_spans, pred_spans in zip(gold, predicted):
        truth = {(s["label"], s["start"], s["end"]) for s in true_spans}
        guess = {(s["label"], s["start"], s["end"]) for s in pred_spans}
        for kind, *_ in truth & guess:
            tp[kind] += 1
        for kind, *_ in guess - truth:
            fp[kind] += 1
        for kind, *_ in truth - guess:
            fn[kind] += 1
    per_type = {t: _prf(tp[t], fp[t], fn[t]) for t in types}
    micro = _prf(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    macro = {k: sum(v[k] for v in per_type.values()) / max(1, len(per_type)) for k in ("precision", "recall", "f1")}
    exact_texts = sum(
        {(s["label"], s["start"], s["end"]) for s in g} == {(s["label"], s["start"], s["end"]) for s in p} for g, p in zip(gold, predicted)
    )
    return {
        "n": len(gold),
        "micro_precision": micro["precision"],
        "micro_recall": micro["recall"],
        "micro_f1": micro["f1"],
        "macro_precision": macro["precision"],
        "macro_recall": macro["recall"],
        "macro_f1": macro["f1"],
        "accuracy": exact_texts / len(gold) if gold else 0.0,  # texts whose entities are all exactly right
        "per_type": per_type,
        "entities_true": int(sum(tp.values()) + sum(fn.values())),
        "entities_predicted": int(sum(tp.values()) + sum(fp.values())),
    }


def _prf(tp: int, fp: int, fn: int) -> dict:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn}
