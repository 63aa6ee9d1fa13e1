"""CoNLL-style BIO tags as character spans: what `data/read.py` hands the entities task for `.conll` files."""

from __future__ import annotations

from tuneforge.errors import DataError


def bio_to_spans(tokens: list[str], tags: list[str], *, where: str) -> tuple[str, list[dict]]:
    """Tokens joined by single spaces, and their BIO (or IOB1) tags as character spans of that text."""
    text, spans, current, position = "", [], None, 0
    for token, tag in zip(tokens, tags):
        start = position + (1 if text else 0)
        text = f"{text} {token}" if text else token
        position = len(text)
        if tag == "O":
            current = None
            continue
        prefix, _, kind = tag.partition("-")
        if prefix not in ("B", "I") or not kind:
            raise DataError(f"{where}: tag {tag!r} is not O, B-TYPE or I-TYPE")
        if prefix == "I" and current is not None and current["label"] == kind:
            current["end"] = position
        else:
            current = {"start": start, "end": position, "label": kind}
            spans.append(current)
    return text, spans
