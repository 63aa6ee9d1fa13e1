"""What every training method receives: the config, the task, the prepared data and the run folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from tuneforge.config import RunConfig
from tuneforge.data.prepare import PreparedData
from tuneforge.rundir import RunDir


@dataclass
class TrainContext:
    config: RunConfig
    task: object  # tuneforge.tasks.base.Task
    data: PreparedData
    run: RunDir
    model_path: str | None  # resolved pretrained weights (None for tfidf)
    resume_from: Path | None = None
    callbacks: list = field(default_factory=list)  # extra Trainer callbacks (e.g. Optuna pruning)
    notes: dict = field(default_factory=dict)  # recorded beside what the method reports (e.g. the `auto` decision)

    @property
    def labels(self) -> list[str]:
        return self.data.labels

    def frame(self, split: str) -> pd.DataFrame:
        """A split's rows; "train" includes the `data.augment` copies the model learns from."""
        return self.data.training_frame() if split == "train" else self.data.splits()[split]

    def texts(self, split: str) -> list[str]:
        return self.frame(split)["text"].tolist()

    def meta_fields(self) -> dict:
        """What every saved model records about the run: task, labels, method and the transforms to replay."""
        return {
            "task": self.task.name,
            "labels": self.labels,
            "method": self.task.method_of(self.config),
            "strip_html": self.config.data.strip_html,
            "transforms": self.data.transforms,
        }
