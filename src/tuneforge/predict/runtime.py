"""What a trained run is scored with: the task's own runtime (a recommender), else a text `Predictor`."""

from __future__ import annotations

from pathlib import Path


def load_runtime(task, path: str | Path, *, batch_size: int = 32):
    from tuneforge.predict.predictor import Predictor

    return task.load_runtime(path, batch_size=batch_size) or Predictor.load(path, batch_size=batch_size)
