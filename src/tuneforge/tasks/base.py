"""The `Task` protocol: everything a stage needs to know about one kind of learning.

A task supplies its data schema (how a label cell is parsed and validated, how
splits are stratified), the model (Hugging Face auto class, head size, LoRA task
type, dataset encoding, collator), validation scores, linear-head fitting for
the `head` / `tfidf` methods, decoding of model outputs into predictions,
file-scoring columns and its evaluation artefacts. The training engine,
`Predictor`, evaluation, compression and the service call these methods and
nothing task-specific of their own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from tuneforge.data.clean import plain_label
from tuneforge.errors import DataError
from tuneforge.sections import FLOOR_METHODS
from tuneforge.tasks.lineage_hooks import LineageHooks

ALL_METHODS = ("full", "lora", "head", "tfidf", "lstm")
FROM_SCRATCH = ("tfidf", "lstm")  # methods that load no pretrained weights (model.name is not used)


def label_index(labels: Sequence[str]) -> dict[str, int]:
    """The one label -> column map: columns follow the sorted label list saved with the model."""
    return {label: i for i, label in enumerate(labels)}


@dataclass
class LinearFit:
    """A linear head learned on fixed features: logits = x @ weight.T + bias."""

    weight: np.ndarray
    bias: np.ndarray
    scores: dict[str, float]
    extra: dict = field(default_factory=dict)  # saved in tuneforge.json (e.g. multilabel thresholds)


class Task(LineageHooks, ABC):
    name: ClassVar[str]
    methods: ClassVar[tuple[str, ...]] = ALL_METHODS
    auto_model: ClassVar[str] = "AutoModelForSequenceClassification"
    peft_task_type: ClassVar[str] = "SEQ_CLS"
    chunkable: ClassVar[bool] = True  # long texts may be scored window by window and averaged
    compressible: ClassVar[bool] = False  # `tuneforge compress` applies
    keeps_raw_text: ClassVar[bool] = False  # outputs index the raw text (no transforms may change it)
    route: ClassVar[str]  # the service path, e.g. /v1/classify
    serves_texts: ClassVar[bool] = True  # the service scores texts through a Predictor and a text route
    method_setting: ClassVar[str] = "train.method"  # where a config names the method
    explainable: ClassVar[bool] = False  # `tuneforge explain` and POST /v1/explain apply
    # the shape of its explanations: "label" (one label of a softmax), "labels" (each label on its own sigmoid),
    # "spans" (each found span); analysis/explain.py picks the explainer by it
    explains: ClassVar[str] = "label"
    slice_columns: ClassVar[tuple[str, ...]] = ()  # per-group metrics of eval/slices.json the report shows; () = no slices
    training_loop: ClassVar[str] = "fine-tune"  # which of the engine's loops trains full/lora: fine-tune, or language-model
    # why `data.augment` (word edits copying the label) does not apply; None: it does
    augment_refusal: ClassVar[str | None] = "it does not learn one label set per text, so word-edited copies have no label to copy"
    streamable: ClassVar[bool] = False  # `data.streaming` applies (tfidf / head trained chunk by chunk)

    # -- how the engine runs it (a task that is not about text overrides these) -------------

    def method_of(self, config) -> str:
        """The method a config asks of this task (text tasks: `train.method`)."""
        return config.train.method

    def needs_pretrained(self, config) -> bool:
        """Whether the run loads pretrained weights (`model.name`)."""
        return self.method_of(config) not in FROM_SCRATCH

    def prepare(self, config, *, seed: int):
        """Read, clean and split the run's data (a `PreparedData`; with `data.streaming`, a `StreamedData` on disk)."""
        if config.data.streaming:
            from tuneforge.data.stream import prepare_streaming

            return prepare_streaming(
                config.data, seed=seed, task=self, method=self.method_of(config), staging_parent=Path(config.output.dir)
            )
        from tuneforge.data.prepare import prepare_data

        return prepare_data(config.data, seed=seed, task=self)

    def trainer(self, method: str):
        """`fit(ctx, out_dir) -> train_info` for `method`; None: the engine's own methods (full, lora, head, tfidf, lstm)."""
        return None

    def unservable(self, meta) -> str | None:
        """Why `predict` and `serve` cannot use this task's saved model `meta`, or None when they can."""
        return None

    def load_runtime(self, path, *, batch_size: int = 32, variant: str | None = None):
        """What `evaluate` scores with; None: a `Predictor` (every text task)."""
        return None

    def compressor(self):
        """`(run, methods, settings) -> trade-off report` for tasks with their own compressed variants;
        None: `tuneforge compress` builds the classifier variants (ONNX, int8, distillation, pruning)."""
        return None

    def load_eval_frame(self, path, config, runtime) -> pd.DataFrame:
        """A labeled file to evaluate a trained run on, read and cleaned with the transforms the model recorded."""
        from tuneforge.data.prepare import load_clean

        frame, _ = load_clean(str(path), config.data.model_copy(update={"format": "auto"}), self, runtime.meta.transforms)
        return frame

    def evaluation_options(self, config) -> dict:
        """Keyword settings `evaluate` takes from the config (e.g. fairness slices); none by default."""
        return {}

    def validation_key(self, config) -> str:
        """The `run.json` train-info key `tune` maximises."""
        return f"best_validation_{config.train.metric}"

    # -- data schema -----------------------------------------------------------------------

    def parse_label(self, raw: Any, *, text: str, where: str, data) -> Any:
        """A label cell as the task's target; `MISSING` when absent; DataError naming `where` when malformed."""
        return plain_label(raw, text=text, where=where)

    @abstractmethod
    def label_names(self, frame: pd.DataFrame) -> list[str]:
        """The sorted label set a model is built for, from the training rows."""

    def check_trainable(self, labels: list[str], *, origin: str, label_column: str) -> None:
        if not labels:
            raise DataError(f"{origin}: column {label_column!r} holds no labels")

    def check_labels(self, frame: pd.DataFrame, labels: list[str], *, label_column: str) -> None:
        """Raise on the first row whose label never appears in training."""
        known = set(labels)
        for source, row_labels in zip(frame["source"], frame["label"].map(self.row_labels)):
            unseen = [x for x in row_labels if x not in known]
            if unseen:
                count = int(frame["label"].map(lambda v: any(x not in known for x in self.row_labels(v))).sum())
                raise DataError(
                    f"{source}: column {label_column!r}: label {unseen[0]!r} never appears in the training data "
                    f"(known: {', '.join(sorted(known))}; {count} row(s) affected)"
                )

    @abstractmethod
    def row_labels(self, target: Any) -> list[str]:
        """The label names one row's target mentions (for counting and validation)."""

    def split_key(self, frame: pd.DataFrame) -> pd.Series | None:
        """What splits are stratified on; None for a plain seeded random split."""
        return None

    def label_counts(self, frame: pd.DataFrame) -> dict[str, int]:
        counts: dict[str, int] = {}
        for target in frame["label"]:
            for label in self.row_labels(target):
                counts[label] = counts.get(label, 0) + 1
        return dict(sorted(counts.items()))

    # -- model -----------------------------------------------------------------------------

    def model_kwargs(self, labels: list[str]) -> dict:
        return {"num_labels": len(labels), "id2label": dict(enumerate(labels)), "label2id": label_index(labels)}

    @abstractmethod
    def encode(self, tokenizer, frame: pd.DataFrame, labels: list[str], *, max_length: int):
        """A torch Dataset of model inputs and targets for the Trainer."""

    def collator(self, tokenizer):
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)

    @abstractmethod
    def validation_scores(self, targets: np.ndarray, logits: np.ndarray) -> dict[str, float]:
        """accuracy, macro_f1 and micro_f1 (what `train.metric` chooses among) from the Trainer's outputs."""

    def finish_training(self, *, validation_logits: Callable[[], np.ndarray], frame: pd.DataFrame, labels: list[str], train) -> dict:
        """After fine-tuning: settings learned on validation (e.g. decision thresholds), saved with the model.

        `validation_logits()` runs the best model over the validation split (only called when needed)."""
        return {}

    # -- linear heads (`head`, `tfidf`) ----------------------------------------------------

    def linear_targets(self, frame: pd.DataFrame, labels: list[str]) -> np.ndarray:
        raise NotImplementedError(f"task {self.name!r} has no linear-head method")

    def fit_linear(self, x_train, y_train, x_val, y_val, *, labels: list[str], c: float, seed: int, train) -> LinearFit:
        """Fit the head for one regularisation strength `c`; `train` is the run's TrainConfig."""
        raise NotImplementedError(f"task {self.name!r} has no linear-head method")

    # -- inference -------------------------------------------------------------------------

    def infer(self, backend, texts: list[str], meta, *, batch_size: int, progress: str | None = None) -> Any:
        """Row-aligned raw scores for `texts` (an array, or a list for outputs of varying size)."""
        return self.activate(backend.logits(texts, batch_size=batch_size, progress=progress))

    def activate(self, logits: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def empty_raw(self, meta) -> Any:
        return np.zeros((0, len(meta.labels)), dtype=np.float32)

    @abstractmethod
    def predictions(self, raw: Any, meta) -> list:
        """One prediction object per row of `raw`."""

    display_columns: ClassVar[tuple[str, ...]] = ("prediction",)

    def display(self, prediction) -> tuple[str, ...]:
        """One table row of `tuneforge predict` for `prediction`, matching `display_columns`."""
        return (str(prediction),)

    @abstractmethod
    def scoring_columns(self, raw: Any, meta) -> dict[str, list]:
        """Columns file scoring adds (name -> one value per row)."""

    # -- evaluation ------------------------------------------------------------------------

    @abstractmethod
    def evaluate(self, predictor, frame: pd.DataFrame, out_dir: Path, *, split: str) -> dict:
        """Score a labeled frame; write metrics.json and the task's plots and error files to `out_dir`."""

    def headline(self, metrics: dict) -> dict[str, float]:
        """The few numbers run.json, `tuneforge runs` and the CLI table show."""
        return {k: metrics[k] for k in ("accuracy", "macro_f1", "micro_f1", "weighted_f1") if k in metrics}

    def card_model(self, config: dict, data_report: dict, train_info: dict) -> str:
        """Markdown lines: what the model is (task, labels, method, base model, input window, transforms)."""
        labels = data_report.get("labels", [])
        transforms = data_report.get("transforms")
        asked, length = config["train"]["method"], config["train"]["max_length"]
        method = FLOOR_METHODS.get(train_info.get("kept"), asked)  # train.keep=best may keep a baseline over the fine-tune
        kept = f" (kept over the requested `{asked}` by train.keep: best)" if method != asked else ""
        base = (
            "(no pretrained weights: learnt from the training data alone)"
            if method in FROM_SCRATCH
            else f"on base model `{config['model']['name']}`"
        )
        window = (
            "the whole text" if method == "tfidf" else f"{length} {'words' if method == 'lstm' else 'tokens'} (longer texts are truncated)"
        )
        return f"""- Task: `{self.name}` ({len(labels)} labels: {", ".join(labels)})
- Method: `{method}` {base}{kept}
- Max input length: {window}
- Text transforms replayed on every input: {", ".join(transforms) if transforms else "none"}{_redaction_line(data_report)}"""

    @abstractmethod
    def card_results(self, metrics: dict) -> str:
        """Markdown: the results section of the model card."""


def _redaction_line(data_report: dict) -> str:
    redacted = data_report.get("redacted")
    if redacted is None:
        return ""
    counts = ", ".join(f"{k} {v}" for k, v in redacted.items()) or "none found"
    return f"\n- Personal data replaced before training (and in every input since): {counts}"


class EncodedDataset:
    """Row-aligned columns (token ids, masks, targets, teacher logits...) as a map-style torch dataset."""

    def __init__(self, columns: dict[str, Sequence]):
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns differ in length: { {k: len(v) for k, v in columns.items()} }")
        self.columns = columns
        self._length = lengths.pop() if lengths else 0

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, i: int) -> dict:
        return {k: v[i] for k, v in self.columns.items()}

    def with_column(self, name: str, values: Sequence) -> EncodedDataset:
        return EncodedDataset({**self.columns, name: values})
