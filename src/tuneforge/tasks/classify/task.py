"""`task: classify` — one label per text: softmax over the label set, cross-entropy, accuracy / F1 / calibration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tuneforge.errors import DataError
from tuneforge.models.encode import linear_head_weights, softmax
from tuneforge.tasks.base import EncodedDataset, LinearFit, Task, label_index
from tuneforge.tasks.classify.decision import decide, positive_index, tune_threshold
from tuneforge.tasks.classify.evaluate import evaluate_chunks, evaluate_frame
from tuneforge.tasks.classify.metrics import selection_scores


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float
    probabilities: dict[str, float]


class ClassifyTask(Task):
    name = "classify"
    augment_refusal = None  # a topic or intent survives a few edited words
    compressible = True
    explainable = True
    slice_columns = ("accuracy", "calibration_error")
    streamable = True
    route = "/v1/classify"

    def label_names(self, frame: pd.DataFrame) -> list[str]:
        return sorted(frame["label"].unique().tolist())

    def check_trainable(self, labels: list[str], *, origin: str, label_column: str) -> None:
        if len(labels) < 2:
            raise DataError(f"{origin}: column {label_column!r} has a single label {labels[0]!r}; classification needs at least 2")

    def row_labels(self, target: Any) -> list[str]:
        return [target]

    def split_key(self, frame: pd.DataFrame) -> pd.Series:
        return frame["label"]

    def targets(self, frame: pd.DataFrame, labels: list[str]) -> np.ndarray:
        index = label_index(labels)
        return np.array([index[x] for x in frame["label"]])

    def encode(self, tokenizer, frame: pd.DataFrame, labels: list[str], *, max_length: int) -> EncodedDataset:
        encoded = tokenizer(frame["text"].tolist(), truncation=True, max_length=max_length)
        return EncodedDataset({**encoded, "labels": self.targets(frame, labels).tolist()})

    def validation_scores(self, targets: np.ndarray, logits: np.ndarray) -> dict[str, float]:
        return selection_scores(targets, np.asarray(logits).argmax(axis=-1))

    linear_targets = targets

    def fit_linear(self, x_train, y_train, x_val, y_val, *, labels: list[str], c: float, seed: int, train) -> LinearFit:
        from sklearn.linear_model import LogisticRegression

        weights = "balanced" if train.class_weight == "balanced" else None
        clf = LogisticRegression(C=c, max_iter=3000, random_state=seed, class_weight=weights).fit(x_train, y_train)
        weight, bias = linear_head_weights(clf.coef_, clf.intercept_, n_labels=len(labels))
        probs = softmax(np.asarray(x_val @ weight.T) + bias)
        extra = {"decision": tune_threshold(y_val, probs, positive_index(labels, train.positive_label))} if train.positive_label else {}
        return LinearFit(weight=weight, bias=bias, scores=selection_scores(y_val, decide(probs, extra.get("decision"))), extra=extra)

    def finish_training(self, *, validation_logits, frame: pd.DataFrame, labels: list[str], train) -> dict:
        """Two labels with `train.positive_label`: the positive label's threshold, tuned on validation."""
        if not train.positive_label:
            return {}
        probs = softmax(validation_logits())
        return {"decision": tune_threshold(self.targets(frame, labels), probs, positive_index(labels, train.positive_label))}

    def activate(self, logits: np.ndarray) -> np.ndarray:
        return softmax(logits)

    def predictions(self, raw: np.ndarray, meta) -> list[Prediction]:
        labels, raw = list(meta.labels), np.asarray(raw)
        if not len(raw):
            return []
        chosen = decide(raw, meta.extra.get("decision"))  # a tuned threshold on the positive label, else the most probable
        return [
            Prediction(label=labels[b], score=float(row[b]), probabilities={lab: float(p) for lab, p in zip(labels, row)})
            for row, b in zip(raw, chosen.tolist())
        ]

    display_columns = ("label", "score")

    def display(self, prediction: Prediction) -> tuple[str, ...]:
        return prediction.label, f"{prediction.score:.3f}"

    def scoring_columns(self, raw: np.ndarray, meta) -> dict[str, list]:
        labels = list(meta.labels)
        columns: dict[str, list] = {"label": [labels[i] for i in raw.argmax(axis=1)], "score": raw.max(axis=1).round(6).tolist()}
        for j, label in enumerate(labels):
            columns[f"prob_{label}"] = raw[:, j].round(6).tolist()
        return columns

    def evaluation_options(self, config) -> dict:
        return {"slices": list(config.evaluate.slices), "min_slice_rows": config.evaluate.min_slice_rows}

    def evaluate(self, predictor, frame: pd.DataFrame, out_dir: Path, *, split: str, slices=(), min_slice_rows: int = 30) -> dict:
        return evaluate_frame(predictor, frame, out_dir, split=split, slices=list(slices), min_slice_rows=min_slice_rows)

    def evaluate_chunks(self, predictor, chunks, out_dir: Path, *, split: str, slices=(), min_slice_rows: int = 30) -> dict:
        """`evaluate` over a streamed run's held-out split, read chunk by chunk."""
        return evaluate_chunks(predictor, chunks, out_dir, split=split, slices=list(slices), min_slice_rows=min_slice_rows)

    def card_results(self, metrics: dict) -> str:
        split = metrics.get("split", "test")
        per_class = metrics.get("per_class", {})
        rows = "\n".join(
            f"| {label} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |" for label, v in per_class.items()
        )
        weakest = min(per_class.items(), key=lambda kv: kv[1]["f1"])[0] if per_class else "n/a"
        return f"""## Results on {split} (n={metrics.get("n")})
- Accuracy: {metrics.get("accuracy", float("nan")):.4f}{_interval(metrics, "accuracy")}
- Macro F1: {metrics.get("macro_f1", float("nan")):.4f}{_interval(metrics, "macro_f1")}; micro F1: {metrics.get("micro_f1", float("nan")):.4f}
- Expected calibration error: {metrics.get("expected_calibration_error", float("nan")):.4f}

| label | precision | recall | F1 | support |
|---|---|---|---|---|
{rows}

{_slices_section(metrics)}## Limitations
- Weakest label on {split}: `{weakest}`. Look at `eval/errors.csv` (most confident mistakes) before relying on it.
- Probabilities are softmax scores; see `eval/reliability.png` before treating them as calibrated.
"""


def _slices_section(metrics: dict) -> str:
    from tuneforge.tasks.slicing import card_section

    return card_section(metrics.get("slices", {}), metric="accuracy", title="accuracy")


def _interval(metrics: dict, name: str) -> str:
    low_high = metrics.get("confidence_intervals", {}).get(name)
    return f" (95% bootstrap interval {low_high[0]:.4f}–{low_high[1]:.4f})" if low_high else ""
