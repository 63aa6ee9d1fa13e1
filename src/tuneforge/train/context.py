"""What every training method receives, and the shared little helpers they use."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from tuneforge.config import RunConfig
from tuneforge.data.prepare import PreparedData


@dataclass
class TrainContext:
    config: RunConfig
    data: PreparedData
    run_dir: Path
    model_path: str | None  # resolved pretrained weights (None for tfidf)
    resume_from: Path | None = None
    callbacks: list = field(default_factory=list)  # extra Trainer callbacks (e.g. Optuna pruning)

    @property
    def metrics_file(self) -> Path:
        return self.run_dir / "metrics.jsonl"

    def label_ids(self, split: str) -> np.ndarray:
        index = {label: i for i, label in enumerate(self.data.labels)}
        return np.array([index[x] for x in self.data.splits()[split]["label"]])

    def texts(self, split: str) -> list[str]:
        return self.data.splits()[split]["text"].tolist()


def score(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """The validation scores every method reports (and `train.metric` chooses among)."""
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
    }


def linear_head_weights(model, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's LogisticRegression as (weight[C, D], bias[C]) for softmax scoring.

    Binary models keep one row; it becomes [0, w] so softmax reproduces the sigmoid.
    """
    # C order: sklearn may hand back a Fortran-ordered view, and safetensors writes raw memory.
    weight = np.ascontiguousarray(model.coef_, dtype=np.float32)
    bias = np.ascontiguousarray(model.intercept_, dtype=np.float32)
    if n_labels == 2 and weight.shape[0] == 1:
        weight = np.ascontiguousarray(np.vstack([np.zeros_like(weight), weight]))
        bias = np.concatenate([np.zeros(1, dtype=np.float32), bias])
    return weight, bias
