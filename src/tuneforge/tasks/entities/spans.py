"""Entity spans <-> BIO tags: reading CoNLL columns, checking JSONL spans, aligning to word pieces, decoding.

Spans are `{"start", "end", "label"}` character offsets into the raw text
(`text[start:end]` is the entity). Models see one tag per word on the word's
first word piece (the other pieces are ignored in the loss, `-100`), in the
IOB2 scheme: `B-TYPE` opens an entity, `I-TYPE` continues it, `O` is outside.
Decoding follows seqeval's default (lenient) rule: an `I-` that does not
continue an entity of its type opens a new one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tuneforge.data.conll import bio_to_spans
from tuneforge.errors import DataError

__all__ = ["IGNORE", "bio_to_spans", "check_spans", "decode_words", "tag_names", "token_tags", "word_ranges"]

IGNORE = -100


def tag_names(types: Sequence[str]) -> list[str]:
    """The model's label list: O, then B-/I- for every type (sorted)."""
    return ["O", *[f"{prefix}-{t}" for t in types for prefix in ("B", "I")]]


def check_spans(raw: Any, *, text: str, where: str) -> list[dict]:
    """Spans from a JSON list (or its string form); offsets must lie in the text and not overlap."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else []
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not a JSON list of spans ({exc.msg})") from None
    if not isinstance(raw, list):
        raise DataError(f'{where}: expected a list of spans like [{{"start": 0, "end": 5, "label": "ORG"}}], got {type(raw).__name__}')
    spans = []
    for i, span in enumerate(raw):
        if not isinstance(span, dict) or not {"start", "end", "label"} <= set(span):
            raise DataError(f"{where}: span {i} must be an object with start, end and label")
        start, end, label = span["start"], span["end"], span["label"]
        if not (isinstance(start, int) and isinstance(end, int)) or isinstance(start, bool) or not 0 <= start < end <= len(text):
            raise DataError(f"{where}: span {i} ({start}, {end}) does not lie inside the text of {len(text)} characters")
        if not isinstance(label, str) or not label.strip() or label in ("O",) or "-" in label[:2]:
            raise DataError(f"{where}: span {i} has a bad label {label!r}")
        spans.append({"start": start, "end": end, "label": label.strip()})
    spans.sort(key=lambda s: (s["start"], s["end"]))
    for a, b in zip(spans, spans[1:]):
        if b["start"] < a["end"]:
            raise DataError(f"{where}: spans ({a['start']}, {a['end']}) and ({b['start']}, {b['end']}) overlap")
    return spans


def word_ranges(word_ids: Sequence[int | None], offsets: Sequence[tuple[int, int]]) -> dict[int, tuple[int, int, int]]:
    """word id -> (index of its first word piece, character start, character end)."""
    words: dict[int, tuple[int, int, int]] = {}
    for t, w in enumerate(word_ids):
        if w is None:
            continue
        start, end = offsets[t]
        if w not in words:
            words[w] = (t, start, end)
        else:
            first, s, _ = words[w]
            words[w] = (first, s, end)
    return words


def token_tags(
    word_ids: Sequence[int | None], offsets: Sequence[tuple[int, int]], spans: list[dict], tag_index: dict[str, int]
) -> list[int]:
    """Tag ids per word piece: the word's tag on its first piece, IGNORE elsewhere."""
    tags = [IGNORE] * len(word_ids)
    previous_span = None
    for _, (first, start, _) in sorted(word_ranges(word_ids, offsets).items()):
        span = next((s for s in spans if s["start"] <= start < s["end"]), None)
        if span is None:
            tags[first] = tag_index["O"]
        else:
            prefix = "I" if span is previous_span else "B"
            tags[first] = tag_index[f"{prefix}-{span['label']}"]
        previous_span = span
    return tags


def decode_words(word_tags: list[tuple[str, float, int, int]]) -> list[dict]:
    """Spans from (tag, probability, char start, char end) per word, in order; score = mean tag probability."""
    spans: list[dict] = []
    current = None
    for tag, prob, start, end in word_tags:
        if tag == "O":
            current = None
            continue
        prefix, _, kind = tag.partition("-")
        if prefix == "I" and current is not None and current["label"] == kind:
            current["end"] = end
            current["probs"].append(prob)
        else:
            current = {"label": kind, "start": start, "end": end, "probs": [prob]}
            spans.append(current)
    return [{"label": s["label"], "start": s["start"], "end": s["end"], "score": sum(s["probs"]) / len(s["probs"])} for s in spans]
