"""The user's tuneforge cache folder: lineage keys and models converted once for reuse."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$TUNEFORGE_CACHE`, else `$XDG_CACHE_HOME/tuneforge`, else ~/.cache/tuneforge."""
    base = os.environ.get("TUNEFORGE_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "tuneforge")
    return Path(base)
