"""`task: multilabel` — zero or more labels per text: one sigmoid per label, binary cross-entropy,
and a decision threshold per label chosen on validation and saved with the model."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tuneforge.atomic import atomic_file, atomic_write_json
from tuneforge.data.clean import MISSING
from tuneforge.errors import DataError
from tuneforge.models.encode import sigmoid
from tuneforge.plots import save_bars_png
from tuneforge.tasks.base import EncodedDataset, LinearFit, Task, label_index
from tuneforge.tasks.multilabel.metrics import multilabel_metrics, selection_scores, tune_thresholds
from tuneforge.tasks.multilabel.slices import SHOWN, slice_metrics
from tuneforge.tasks.slicing import card_section

ERRORS_KEPT = 50


@dataclass(frozen=True)
class LabelsPrediction:
    labels: list[str]  # above their thresholds, highest score first
    scores: dict[str, float]


class MultiLabelTask(Task):
    name = "multilabel"
    augment_refusal = None  # each label of a text survives a few edited words
    route = "/v1/multilabel"
    explainable = True
    explains = "labels"
    slice_columns = SHOWN

    # -- data ------------------------------------------------------------------------------

    def parse_label(self, raw: Any, *, text: str, where: str, data) -> Any:
        """A JSON list (`["a", "b"]`), or one string split on `data.label_separator`; empty means no label."""
        if raw is None:
            return MISSING
        if isinstance(raw, str):
            value = raw.strip()
            if value.startswith("["):
                try:
                    raw = json.loads(value)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{where}: not a JSON list of labels ({exc.msg})") from None
            else:
                raw = value.split(data.label_separator) if value else []
        if not isinstance(raw, (list, tuple, np.ndarray)):
            raise DataError(f"{where}: expected a list of labels or a {data.label_separator!r}-separated string, got {type(raw).__name__}")
        labels = []
        for item in raw:
            if not isinstance(item, (str, int)) or isinstance(item, bool):
                raise DataError(f"{where}: labels must be strings, got {type(item).__name__}")
            if str(item).strip():
                labels.append(str(item).strip())
        return sorted(set(labels))

    def label_names(self, frame: pd.DataFrame) -> list[str]:
        return sorted({label for labels in frame["label"] for label in labels})

    def check_trainable(self, labels: list[str], *, origin: str, label_column: str) -> None:
        if not labels:
            raise DataError(f"{origin}: column {label_column!r} holds no label on any row")

    def row_labels(self, target: Any) -> list[str]:
        return list(target)

    def split_key(self, frame: pd.DataFrame) -> pd.Series:
        """Stratify on each row's rarest label (rows without labels together), a common proxy for multi-label strata."""
        counts = pd.Series([x for labels in frame["label"] for x in labels]).value_counts()
        key = frame["label"].map(lambda labels: min(labels, key=lambda x: (counts[x], x)) if labels else "(none)")
        key = key.where(key.map(key.value_counts()) >= 3, "(rare)")
        if (key == "(rare)").sum() == 1:  # a lone rare row cannot form a stratum: join the largest one
            key = key.replace("(rare)", key.value_counts().index[0])
        return key

    def targets(self, frame: pd.DataFrame, labels: list[str]) -> np.ndarray:
        index = label_index(labels)
        y = np.zeros((len(frame), len(labels)), dtype=np.float32)
        for i, row in enumerate(frame["label"]):
            for label in row:
                if label in index:
                    y[i, index[label]] = 1.0
        return y

    # -- model -----------------------------------------------------------------------------

    def model_kwargs(self, labels: list[str]) -> dict:
        return {**super().model_kwargs(labels), "problem_type": "multi_label_classification"}

    def encode(self, tokenizer, frame: pd.DataFrame, labels: list[str], *, max_length: int) -> EncodedDataset:
        encoded = tokenizer(frame["text"].tolist(), truncation=True, max_length=max_length)
        return EncodedDataset({**encoded, "labels": self.targets(frame, labels).tolist()})

    def validation_scores(self, targets: np.ndarray, logits: np.ndarray) -> dict[str, float]:
        """Scores with thresholds tuned on these very rows, as the saved model will use them: a fixed 0.5
        would score 0 for the many epochs in which rare labels stay below it, and stop training early."""
        truth, probs = np.asarray(targets) > 0.5, sigmoid(np.asarray(logits))
        return selection_scores(truth, probs >= np.asarray(tune_thresholds(truth, probs)))

    def finish_training(self, *, validation_logits, frame: pd.DataFrame, labels: list[str], train) -> dict:
        y_val = self.targets(frame, labels)
        return {"thresholds": tune_thresholds(y_val > 0.5, sigmoid(validation_logits()), fixed=train.decision_threshold)}

    linear_targets = targets

    def fit_linear(self, x_train, y_train, x_val, y_val, *, labels: list[str], c: float, seed: int, train) -> LinearFit:
        """One logistic regression per label; a label that is always (or never) present gets a constant score."""
        from sklearn.linear_model import LogisticRegression

        n_features = x_train.shape[1]
        weight = np.zeros((len(labels), n_features), dtype=np.float32)
        bias = np.zeros(len(labels), dtype=np.float32)
        for j in range(len(labels)):
            column = y_train[:, j]
            if column.min() == column.max():
                bias[j] = 12.0 if column[0] > 0.5 else -12.0
                continue
            clf = LogisticRegression(C=c, max_iter=3000, random_state=seed).fit(x_train, column.astype(int))
            weight[j], bias[j] = clf.coef_[0], clf.intercept_[0]
        probs = sigmoid(np.asarray(x_val @ weight.T) + bias)
        thresholds = tune_thresholds(y_val > 0.5, probs, fixed=train.decision_threshold)
        scores = selection_scores(y_val > 0.5, probs >= np.asarray(thresholds))
        return LinearFit(weight=np.ascontiguousarray(weight), bias=bias, scores=scores, extra={"thresholds": thresholds})

    # -- inference -------------------------------------------------------------------------

    def activate(self, logits: np.ndarray) -> np.ndarray:
        return sigmoid(logits)

    @staticmethod
    def thresholds(meta) -> np.ndarray:
        return np.asarray(meta.extra.get("thresholds") or [0.5] * len(meta.labels), dtype=np.float32)

    def decide(self, raw: np.ndarray, meta) -> np.ndarray:
        return raw >= self.thresholds(meta)

    def predictions(self, raw: np.ndarray, meta) -> list[LabelsPrediction]:
        labels, chosen = list(meta.labels), self.decide(raw, meta)
        out = []
        for row, picked in zip(raw, chosen):
            order = [j for j in np.argsort(-row, kind="stable") if picked[j]]
            out.append(LabelsPrediction(labels=[labels[j] for j in order], scores={lab: float(p) for lab, p in zip(labels, row)}))
        return out

    display_columns = ("labels", "scores")

    def display(self, prediction: LabelsPrediction) -> tuple[str, ...]:
        return ", ".join(prediction.labels) or "(none)", ", ".join(f"{x} {prediction.scores[x]:.2f}" for x in prediction.labels)

    def scoring_columns(self, raw: np.ndarray, meta) -> dict[str, list]:
        predictions = self.predictions(raw, meta)
        columns: dict[str, list] = {"labels": [json.dumps(p.labels, ensure_ascii=False) for p in predictions]}
        for j, label in enumerate(meta.labels):
            columns[f"score_{label}"] = raw[:, j].round(6).tolist()
        return columns

    # -- evaluation ------------------------------------------------------------------------

    def evaluation_options(self, config) -> dict:
        return {"slices": list(config.evaluate.slices), "min_slice_rows": config.evaluate.min_slice_rows}

    def evaluate(self, predictor, frame: pd.DataFrame, out_dir: Path, *, split: str, slices=(), min_slice_rows: int = 30) -> dict:
        labels = predictor.labels
        probs = predictor.predict_raw(frame["text"].tolist(), progress=f"evaluating {split}")
        y_true = self.targets(frame, labels) > 0.5
        y_pred = self.decide(probs, predictor.meta)
        metrics = {"split": split, "task": self.name, **multilabel_metrics(y_true, y_pred, labels)}
        metrics["thresholds"] = dict(zip(labels, self.thresholds(predictor.meta).tolist()))
        metrics["slices"] = slice_metrics(frame, y_true, y_pred, labels, columns=list(slices), min_rows=min_slice_rows)
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out_dir / "slices.json", metrics["slices"])
        atomic_write_json(out_dir / "metrics.json", metrics)
        f1 = {label: v["f1"] for label, v in metrics["per_label"].items()}
        save_bars_png(f1, out_dir / "per_label_f1.png", title=f"F1 per label ({split}, n={len(frame)})", xlabel="F1")
        self._write_errors(frame, y_true, y_pred, probs, labels, out_dir / "errors.csv")
        return metrics

    @staticmethod
    def _write_errors(frame, y_true, y_pred, probs, labels, path: Path) -> None:
        """Texts with the most wrong labels first (missed and spurious listed apart)."""
        wrong = (y_true != y_pred).sum(axis=1)
        order = [i for i in np.argsort(-wrong, kind="stable") if wrong[i]][:ERRORS_KEPT]
        table = pd.DataFrame(
            {
                "source": [frame["source"].iloc[i] for i in order],
                "missed": [", ".join(labels[j] for j in np.flatnonzero(y_true[i] & ~y_pred[i])) for i in order],
                "spurious": [", ".join(labels[j] for j in np.flatnonzero(y_pred[i] & ~y_true[i])) for i in order],
                "text": [frame["text"].iloc[i] for i in order],
            }
        )
        with atomic_file(path, "w", encoding="utf-8", newline="") as fh:
            table.to_csv(fh, index=False)

    def headline(self, metrics: dict) -> dict[str, float]:
        return {k: metrics[k] for k in ("accuracy", "micro_f1", "macro_f1", "hamming_loss") if k in metrics}

    def card_results(self, metrics: dict) -> str:
        per_label = metrics.get("per_label", {})
        rows = "\n".join(
            f"| {label} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} | {metrics.get('thresholds', {}).get(label, 0.5):.2f} |"
            for label, v in per_label.items()
        )
        weakest = min(per_label.items(), key=lambda kv: kv[1]["f1"])[0] if per_label else "n/a"
        return f"""## Results on {metrics.get("split", "test")} (n={metrics.get("n")})
- Micro F1: {metrics.get("micro_f1", float("nan")):.4f}; macro F1: {metrics.get("macro_f1", float("nan")):.4f}
- Subset accuracy (every label of a text right): {metrics.get("accuracy", float("nan")):.4f}; Hamming loss: {metrics.get("hamming_loss", float("nan")):.4f}
- Labels per text: {metrics.get("mean_labels_true", float("nan")):.2f} true, {metrics.get("mean_labels_predicted", float("nan")):.2f} predicted

| label | precision | recall | F1 | support | threshold |
|---|---|---|---|---|---|
{rows}

{card_section(metrics.get("slices", {}), metric="micro_f1", title="micro F1")}## Limitations
- Thresholds were tuned per label on the validation split; labels with little support there have noisy thresholds.
- Weakest label: `{weakest}`. See `eval/errors.csv` (missed and spurious labels per text).
"""
