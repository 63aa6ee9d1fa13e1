"""Durations as people write them in configs and on the command line: 90s, 30m, 1.5h, 1h30m, 30d."""

from __future__ import annotations

import re


def parse_duration(text: str) -> float:
    """'90s', '30m', '1.5h', '1h30m', '30d' or plain seconds -> seconds."""
    text = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(d|h|m|s)", text)
    if not parts or "".join(f"{n}{u}" for n, u in parts) != re.sub(r"\s+", "", text):
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 30m, 1.5h, 1h30m, 30d)")
    return sum(float(n) * {"d": 86400, "h": 3600, "m": 60, "s": 1}[u] for n, u in parts)
