"""Rule-marked entities for the bundled `bbc-entities` set: MONEY, PERCENT and DATE by regular expression.

No NER corpus installs offline, so the bundled entity data is real text with
machine-made labels. The rules are deliberately simple and documented here; a
model trained on them learns these rules, nothing more.
"""

from __future__ import annotations

import re

_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_DAYS = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
_SCALE = r"(?:\s?(?:bn|m|k|billion|million|trillion)\b)?"
RULES = (
    ("MONEY", re.compile(rf"[£$€]\d[\d,]*(?:\.\d+)?{_SCALE}|\b\d[\d,]*(?:\.\d+)?{_SCALE}\s(?:pounds|dollars|euros)\b")),
    ("PERCENT", re.compile(r"\b\d+(?:\.\d+)?(?:%|\s?per\s?cent\b|\spercent\b)")),
    (
        "DATE",
        re.compile(rf"\b(?:\d{{1,2}}\s)?(?:{_MONTHS})(?:\s\d{{1,2}}(?!\d))?(?:,?\s(?:19|20)\d\d\b)?|\b(?:{_DAYS})\b|\b(?:19|20)\d\d\b"),
    ),
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")


def sentences(text: str, *, min_chars: int = 30, max_chars: int = 400) -> list[str]:
    """Sentences of an article (split after . ! ? before a capital), whitespace collapsed, of a usable length."""
    flat = re.sub(r"\s+", " ", text).strip()
    return [s for s in _SENTENCE.split(flat) if min_chars <= len(s) <= max_chars]


def find_entities(text: str) -> list[dict]:
    """Non-overlapping spans, earlier rules winning ties (MONEY over a bare year inside "£2004m")."""
    found: list[dict] = []
    for label, pattern in RULES:
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(start < s["end"] and s["start"] < end for s in found):
                continue
            found.append({"start": start, "end": end, "label": label})
    return sorted(found, key=lambda s: s["start"])
