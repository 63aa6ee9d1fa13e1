"""`RunDir`: the one object that knows a run folder's layout and reads and writes its `run.json`.

Every stage (train, evaluate, compress, predict, serve, tune) reaches a run's
files through it, so the layout is spelled out here and nowhere else:

    run.json  config.yaml  data_report.json  splits/<split>.jsonl  metrics.jsonl
    checkpoints/  model/  eval/  compress/<variant>/ + tradeoffs.json  model_card.md  cost.json

Runs written by earlier releases use the same names and load unchanged.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from tuneforge.atomic import TMP_SUFFIX, atomic_file, atomic_write_json, atomic_write_text
from tuneforge.errors import ConfigError, RunError

RUN_FILE = "run.json"
CONFIG_FILE = "config.yaml"
META_FILE = "tuneforge.json"  # inside a model folder: what the model is and how to use it
SPLITS = ("train", "validation", "test")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")[:40] or "run"


class RunDir:
    """A run folder. Construct with an existing path, or `RunDir.create(parent, name)`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    # -- creating and opening ------------------------------------------------------------

    @classmethod
    def create(cls, parent: str | Path, name: str) -> RunDir:
        """Make `parent/<name>-<UTC timestamp>`; adds a counter if two runs start in one second."""
        parent = Path(parent)
        if parent.exists() and not parent.is_dir():
            raise RunError(f"output.dir: {parent} exists and is not a folder")
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"output.dir: cannot create {parent} ({exc.strerror or exc})") from None
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        base = f"{_slug(name)}-{stamp}"
        for i in range(1000):
            candidate = parent / (base if i == 0 else f"{base}-{i}")
            try:
                candidate.mkdir()
                return cls(candidate)
            except FileExistsError:
                continue
            except OSError as exc:
                raise RunError(f"output.dir: cannot create a run folder in {parent} ({exc.strerror or exc})") from None
        raise RunError(f"could not create a run directory under {parent}")

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run folder (one with run.json); a clear error otherwise."""
        run = cls(path)
        if not run.path.is_dir():
            raise RunError(f"run directory not found: {run.path}")
        if not run.run_file.is_file():
            raise RunError(f"{run.path} is not a tuneforge run directory (no {RUN_FILE})")
        return run

    # -- paths -----------------------------------------------------------------------------

    run_file = property(lambda self: self.path / RUN_FILE)
    config_file = property(lambda self: self.path / CONFIG_FILE)
    data_report_file = property(lambda self: self.path / "data_report.json")
    splits_dir = property(lambda self: self.path / "splits")
    metrics_file = property(lambda self: self.path / "metrics.jsonl")
    checkpoints_dir = property(lambda self: self.path / "checkpoints")
    model_dir = property(lambda self: self.path / "model")
    eval_dir = property(lambda self: self.path / "eval")
    compress_dir = property(lambda self: self.path / "compress")
    tradeoffs_file = property(lambda self: self.compress_dir / "tradeoffs.json")
    tradeoffs_plot = property(lambda self: self.compress_dir / "tradeoffs.png")
    model_card_file = property(lambda self: self.path / "model_card.md")
    cost_file = property(lambda self: self.path / "cost.json")
    logs_dir = property(lambda self: self.path / "logs")

    def split_file(self, split: str) -> Path:
        return self.splits_dir / f"{split}.jsonl"

    def eval_subdir(self, data_name: str) -> Path:
        """Where evaluation on another file goes, so the run's own eval/ stays."""
        return self.eval_dir / (re.sub(r"[^A-Za-z0-9_.-]+", "-", data_name) or "data")

    def variant_dir(self, variant: str) -> Path:
        return self.compress_dir / variant

    # -- run.json --------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """The parsed run.json; a RunError naming the problem when it is missing or broken."""
        try:
            raw = self.run_file.read_bytes()
        except FileNotFoundError:
            raise RunError(f"{self.path} is not a tuneforge run directory (no {RUN_FILE})") from None
        except OSError as exc:
            raise RunError(f"{self.run_file}: unreadable ({exc.strerror or exc})") from None
        try:
            info = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise RunError(f"{self.run_file}: not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise RunError(f"{self.run_file}: unreadable ({exc})") from None
        if not isinstance(info, dict):
            raise RunError(f"{self.run_file}: expected a JSON object, got {type(info).__name__}")
        return info

    def update(self, **fields: Any) -> dict[str, Any]:
        """Merge `fields` into run.json (status, task, method, metrics...) atomically."""
        info = self.info() if self.run_file.exists() else {}
        info.update(fields)
        info["updated"] = time.time()
        atomic_write_json(self.run_file, info)
        return info

    # -- config, report, cost, card --------------------------------------------------------

    def write_config(self, text: str) -> None:
        atomic_write_text(self.config_file, text)

    def read_config(self):
        from tuneforge.config import load_config

        return load_config(self.config_file)

    def write_data_report(self, report: dict) -> None:
        atomic_write_json(self.data_report_file, report)

    def read_data_report(self) -> dict:
        try:
            return json.loads(self.data_report_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RunError(f"{self.data_report_file}: unreadable ({exc})") from None

    def write_cost(self, cost: dict) -> None:
        atomic_write_json(self.cost_file, cost)

    def write_model_card(self, text: str) -> Path:
        return atomic_write_text(self.model_card_file, text)

    # -- splits ----------------------------------------------------------------------------

    def write_split(self, split: str, frame: pd.DataFrame) -> None:
        """Keep the exact rows of a split, every column (ids, groups, metadata) included."""
        with atomic_file(self.split_file(split), "w", encoding="utf-8") as fh:
            for record in frame.to_dict(orient="records"):
                fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")

    def read_split(self, split: str) -> pd.DataFrame | None:
        """The saved rows of `split` with their original value types, or None when the run has no such split."""
        path = self.split_file(split)
        if not path.is_file():
            return None
        with path.open(encoding="utf-8") as fh:
            records = [json.loads(line) for line in fh if line.strip()]
        frame = pd.DataFrame.from_records(records)
        if frame.empty:
            return pd.DataFrame(columns=["text", "label", "source"])
        for column in ("text", "source", "user", "item"):  # always strings (texts, ids), whatever a reader would guess
            if column in frame:
                frame[column] = frame[column].astype(str)
        return frame

    def splits(self) -> dict[str, pd.DataFrame]:
        return {split: frame for split in SPLITS if (frame := self.read_split(split)) is not None}

    def evaluation_split(self) -> tuple[str, pd.DataFrame]:
        """The held-out rows measurements use: test when the run has it, else validation."""
        for split in ("test", "validation"):
            frame = self.read_split(split)
            if frame is not None:
                return split, frame
        raise RunError(f"{self.path}: no saved test or validation split to measure on")

    # -- models and compressed variants ----------------------------------------------------

    def recommended_variant(self) -> str | None:
        """The variant `compress` recommended, or None when the run was never compressed."""
        if not self.tradeoffs_file.is_file():
            return None
        return json.loads(self.tradeoffs_file.read_text(encoding="utf-8"))["recommended"]

    def variants(self) -> list[str]:
        if not self.compress_dir.is_dir():
            return []
        return sorted(p.name for p in self.compress_dir.iterdir() if not p.name.startswith(".") and (p / META_FILE).is_file())

    def remove_stale_temporaries(self) -> list[str]:
        """Half-built model and variant folders (`.model.*.tmp`, `.<variant>.*.tmp`) a killed run left behind.

        Only call this while no other process works on the run (resume, compress): they are its own scratch."""
        removed = []
        for folder in (self.path, self.compress_dir):
            if not folder.is_dir():
                continue
            for path in folder.glob(f".*{TMP_SUFFIX}"):
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                removed.append(path.name)
        return removed

    def model_for(self, variant: str | None = None) -> Path:
        """The model folder to load: `variant` is None/"original", a compressed variant name,
        "recommended", or "auto" (recommended when the run was compressed, else original)."""
        if variant in (None, "original"):
            return self._original_model()
        if variant in ("auto", "recommended"):
            chosen = self.recommended_variant()
            if chosen is None:
                if variant == "auto":
                    return self._original_model()
                raise RunError(f"{self.path} has no compress/tradeoffs.json; run `tuneforge compress {self.path}` first")
            if chosen == "original":
                return self._original_model()
            variant = chosen
        folder = self.variant_dir(variant)
        if not (folder / META_FILE).is_file():
            raise RunError(f"{self.path}: no compressed variant {variant!r} (available: {', '.join(['original', *self.variants()])})")
        return folder

    def _original_model(self) -> Path:
        if (self.model_dir / META_FILE).is_file():
            return self.model_dir
        if not self.path.exists():
            raise RunError(f"run directory not found: {self.path}")
        raise RunError(
            f"{self.path} has no trained model (no model/{META_FILE}); the run may not have finished — "
            f"try `tuneforge train --resume {self.path}`"
        )


def find_model_dir(path: str | Path, variant: str | None = None) -> Path:
    """Accept a run directory or a model folder itself (one holding tuneforge.json)."""
    path = Path(path)
    if variant in (None, "original", "auto") and (path / META_FILE).is_file():
        return path  # a model folder itself: it has no compressed variants
    return RunDir(path).model_for(variant)


@dataclass(frozen=True)
class RunSummary:
    path: Path
    status: str
    task: str
    method: str
    model: str
    data: str
    metric_name: str
    metric: float | None
    accuracy: float | None
    seconds: float | None
    started: str
    problem: str | None = None  # why the run could not be read, for "unreadable" rows


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _summary(run: RunDir) -> RunSummary:
    try:
        info = run.info()
    except RunError as exc:
        return RunSummary(run.path, "unreadable", "?", "?", "?", "?", "-", None, None, None, "", problem=str(exc))
    metrics = info.get("metrics") if isinstance(info.get("metrics"), dict) else {}
    metric_name = str(info.get("metric_name") or "macro_f1")
    text = lambda key, default="?": str(info.get(key)) if info.get(key) is not None else default  # noqa: E731
    return RunSummary(
        path=run.path,
        status=text("status", "unknown"),
        task=text("task", "classify"),
        method=text("method"),
        model=text("model"),
        data=text("data"),
        metric_name=metric_name,
        metric=_number(metrics.get(metric_name)),
        accuracy=_number(metrics.get("accuracy")),
        seconds=_number(info.get("wall_seconds")),
        started=text("started", ""),
    )


def iter_runs(parent: str | Path) -> Iterator[RunDir]:
    parent = Path(parent)
    if not parent.is_dir():
        return
    for child in parent.iterdir():
        if not child.name.startswith(".") and (child / RUN_FILE).is_file():
            yield RunDir(child)


def list_runs(parent: str | Path) -> list[RunSummary]:
    """Every run folder under `parent`, newest first; broken ones are listed as `unreadable` with the reason."""
    return sorted((_summary(run) for run in iter_runs(parent)), key=lambda s: s.started, reverse=True)


def prune_runs(parent: str | Path, *, older_than_days: float | None = None) -> list[Path]:
    """Delete run folders that finished (complete, failed, stopped) and started more than `older_than_days` ago,
    or, without it, more than their own `output.retention` ago (runs that set none are kept).

    Running and unreadable runs are never deleted: a run in progress, or one whose age cannot be told, stays."""
    from tuneforge.durations import parse_duration

    now = datetime.now(timezone.utc)
    deleted = []
    for run in iter_runs(parent):
        try:
            info = run.info()
            started = datetime.fromisoformat(str(info.get("started")))
            if older_than_days is not None:
                limit = timedelta(days=older_than_days)
            else:
                retention = run.read_config().output.retention
                if retention is None:
                    continue
                limit = timedelta(seconds=parse_duration(str(retention)))
        except (RunError, ConfigError, ValueError, OSError):
            continue
        if info.get("status") != "running" and started < now - limit:
            shutil.rmtree(run.path)
            deleted.append(run.path)
    return deleted
