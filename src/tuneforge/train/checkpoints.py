"""Checkpoints that are only trusted once complete.

Hugging Face `Trainer` writes `checkpoint-N/` file by file. After it finishes we
fsync the folder and atomically add a marker; resume considers only folders
with the marker, so a checkpoint cut short by a crash is never picked up.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

from transformers import TrainerCallback

from tuneforge.runs import atomic_write_json, fsync_tree

logger = logging.getLogger(__name__)
MARKER = "tuneforge-complete.json"
_STEP = re.compile(r"^checkpoint-(\d+)$")


class CompleteCheckpointMarker(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir():
            fsync_tree(folder)
            atomic_write_json(folder / MARKER, {"step": state.global_step, "epoch": state.epoch})
        return control


def checkpoints(folder: Path) -> list[tuple[int, Path]]:
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := _STEP.match(p.name))]
    return sorted(found)


def latest_complete_checkpoint(folder: Path, *, remove_incomplete: bool = False) -> Path | None:
    """Newest checkpoint with its completion marker; optionally delete the unfinished ones."""
    best = None
    for _, path in checkpoints(folder):
        if (path / MARKER).is_file():
            best = path
        elif remove_incomplete:
            logger.warning("removing incomplete checkpoint %s (interrupted while saving)", path)
            shutil.rmtree(path, ignore_errors=True)
    return best
