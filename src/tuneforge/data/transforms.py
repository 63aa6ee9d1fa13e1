"""Text transforms applied before the model, as an ordered list of names.

The list a run used is saved with its model (`tuneforge.json`, `transforms`) and
replayed by `Predictor` on every input, so served text is shaped exactly like
training text. A new transform is one entry in `TRANSFORMS`; PII redaction
(`redact:...`, `data/redact.py`) is a transform whose name carries its settings.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence

from tuneforge.errors import ConfigError

_BLOCKS = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.I | re.S)
_TAGS = re.compile(r"<!--.*?-->|</?[A-Za-z][^<>]*>", re.S)
_ENTITY = re.compile(r"&(#\d+|#x[0-9a-fA-F]+|[A-Za-z]+);")
_SPACE = re.compile(r"\s+")


def has_html(text: str) -> bool:
    return bool(_TAGS.search(text) or _ENTITY.search(text))


def strip_html(text: str) -> str:
    """Remove tags (and script/style blocks), unescape entities."""
    if not has_html(text):
        return text
    return html.unescape(_TAGS.sub(" ", _BLOCKS.sub(" ", text)))


def collapse_whitespace(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


TRANSFORMS: dict[str, Callable[[str], str]] = {"strip_html": strip_html, "collapse_whitespace": collapse_whitespace}


def default_transforms(*, strip_html: bool) -> list[str]:
    """What `data.strip_html` means as a transform list (also how models saved before the list existed replay)."""
    return ["strip_html", "collapse_whitespace"] if strip_html else ["collapse_whitespace"]


def check_transforms(names: Sequence[str]) -> list[str]:
    unknown = [n for n in names if n not in TRANSFORMS and not n.startswith("redact:")]
    if unknown:
        raise ConfigError(f"unknown text transform(s) {', '.join(map(repr, unknown))}; known: {', '.join(TRANSFORMS)}, redact:...")
    return list(names)


def transform(name: str) -> Callable[[str], str]:
    """The function behind a recorded name; `redact:...` names carry their settings (see `data/redact.py`)."""
    if name.startswith("redact:"):
        from tuneforge.data.redact import redactor

        return redactor(name)
    return TRANSFORMS[name]


def apply_transforms(text: str, names: Sequence[str]) -> str:
    for name in names:
        text = transform(name)(text)
    return text
