"""Checkpoints that are only trusted once complete and intact.

Hugging Face `Trainer` writes `checkpoint-N/` file by file. After it finishes we
fsync the folder and atomically add a marker listing every file's size and
SHA-256. Resume takes the newest checkpoint whose marker exists and whose files
still match it; a checkpoint cut short by a crash, or damaged afterwards, is
never picked up (it is removed, and the previous one is used).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from pathlib import Path

from transformers import TrainerCallback

from tuneforge.atomic import apply_umask, atomic_write_json, fsync_tree

logger = logging.getLogger(__name__)
MARKER = "tuneforge-complete.json"
_STEP = re.compile(r"^checkpoint-(\d+)$")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manifest(folder: Path) -> dict[str, dict]:
    return {
        str(p.relative_to(folder)): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MARKER and not p.name.endswith(".tmp")
    }


class CompleteCheckpointMarker(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        if args.world_size > 1:  # every rank writes its own RNG state into the folder; mark it only after all have
            import torch.distributed as dist

            dist.barrier()
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir() and state.is_world_process_zero:
            apply_umask(folder)
            fsync_tree(folder)
            atomic_write_json(folder / MARKER, {"step": state.global_step, "epoch": state.epoch, "files": _manifest(folder)})
        return control


def verify_checkpoint(folder: Path) -> str | None:
    """None when the checkpoint is complete and matches its manifest, else what is wrong."""
    marker = folder / MARKER
    if not marker.is_file():
        return "no completion marker (interrupted while saving)"
    try:
        files = json.loads(marker.read_text(encoding="utf-8"))["files"]
    except (json.JSONDecodeError, KeyError, OSError) as exc:
        return f"unreadable marker ({exc})"
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != expected["bytes"]:
            return f"{name} has {path.stat().st_size} bytes, expected {expected['bytes']}"
        if _sha256(path) != expected["sha256"]:
            return f"{name} does not match its checksum"
    return None


def checkpoints(folder: Path) -> list[tuple[int, Path]]:
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := _STEP.match(p.name))]
    return sorted(found)


def latest_complete_checkpoint(folder: Path, *, remove_incomplete: bool = False) -> Path | None:
    """Newest intact checkpoint; with `remove_incomplete`, delete the broken newer ones."""
    for _, path in reversed(checkpoints(folder)):
        problem = verify_checkpoint(path)
        if problem is None:
            return path
        logger.warning("skipping %s: %s", path, problem)
        if remove_incomplete:
            shutil.rmtree(path, ignore_errors=True)
    return None
