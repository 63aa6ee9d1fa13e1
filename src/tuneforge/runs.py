"""Run directories: create, write atomically, describe, list.

Every file a run writes goes through `atomic_*` (temporary name, fsync, rename),
so a crash never leaves a half-written file or model folder that looks valid.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tuneforge.errors import RunError

RUN_FILE = "run.json"
CONFIG_FILE = "config.yaml"


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_file(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "w", **open_kwargs) -> Iterator[Any]:
    """Open a temporary file beside `path`; it replaces `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with open(tmp, mode, **open_kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces `path` whole (files fsynced first)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        fsync_tree(tmp)
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(Path(dirpath))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")[:40] or "run"


def create_run_dir(parent: str | Path, name: str) -> Path:
    """Make `parent/<name>-<UTC timestamp>`; adds a counter if two runs start in one second."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = f"{_slug(name)}-{stamp}"
    for i in range(1000):
        candidate = parent / (base if i == 0 else f"{base}-{i}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise RunError(f"could not create a run directory under {parent}")


def write_run_info(run_dir: Path, **fields: Any) -> dict[str, Any]:
    """Merge `fields` into run.json (status, method, metrics...) atomically."""
    info = read_run_info(run_dir) if (run_dir / RUN_FILE).exists() else {}
    info.update(fields)
    info["updated"] = time.time()
    atomic_write_json(run_dir / RUN_FILE, info)
    return info


def read_run_info(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / RUN_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{run_dir} is not a tuneforge run directory (no {RUN_FILE})") from None
    except json.JSONDecodeError as exc:
        raise RunError(f"{path}: unreadable ({exc})") from None


def require_run_dir(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"run directory not found: {run_dir}")
    if not (run_dir / RUN_FILE).is_file():
        raise RunError(f"{run_dir} is not a tuneforge run directory (no {RUN_FILE})")
    return run_dir


@dataclass(frozen=True)
class RunSummary:
    path: Path
    status: str
    method: str
    model: str
    data: str
    metric_name: str
    metric: float | None
    accuracy: float | None
    seconds: float | None
    started: str


def list_runs(parent: str | Path) -> list[RunSummary]:
    """Every run directory under `parent`, newest first."""
    parent = Path(parent)
    if not parent.is_dir():
        return []
    summaries = []
    for child in parent.iterdir():
        if not (child / RUN_FILE).is_file() or child.name.startswith("."):
            continue
        try:
            info = read_run_info(child)
        except RunError:
            continue
        metrics = info.get("metrics") or {}
        summaries.append(
            RunSummary(
                path=child,
                status=info.get("status", "unknown"),
                method=info.get("method", "?"),
                model=info.get("model", "?"),
                data=info.get("data", "?"),
                metric_name=info.get("metric_name", "macro_f1"),
                metric=metrics.get(info.get("metric_name", "macro_f1")),
                accuracy=metrics.get("accuracy"),
                seconds=info.get("wall_seconds"),
                started=info.get("started", ""),
            )
        )
    return sorted(summaries, key=lambda s: s.started, reverse=True)
