"""`task: entities` — token classification: find typed spans (people, amounts, dates...) in text.

Input: CoNLL-style BIO columns (`.conll` / `.bio`) or JSONL/CSV/Parquet whose label
column holds character spans. The model tags each word on its first word piece;
predictions are spans with character offsets into the text as submitted (no
text transform runs, so offsets always point into the caller's own string).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tuneforge.atomic import atomic_file, atomic_write_json
from tuneforge.data.clean import MISSING
from tuneforge.errors import DataError
from tuneforge.models.encode import softmax
from tuneforge.plots import save_bars_png
from tuneforge.tasks.base import EncodedDataset, Task
from tuneforge.tasks.entities.metrics import entity_metrics
from tuneforge.tasks.entities.slices import SHOWN, slice_metrics
from tuneforge.tasks.entities.spans import IGNORE, check_spans, decode_words, tag_names, token_tags, word_ranges
from tuneforge.tasks.slicing import card_section

ERRORS_KEPT = 50


@dataclass(frozen=True)
class Entity:
    label: str
    start: int
    end: int
    text: str
    score: float


@dataclass(frozen=True)
class EntitiesPrediction:
    entities: list[Entity]


class EntitiesTask(Task):
    name = "entities"
    methods = ("full", "lora")
    auto_model = "AutoModelForTokenClassification"
    peft_task_type = "TOKEN_CLS"
    chunkable = False
    keeps_raw_text = True
    augment_refusal = "its labels are character spans into the text, which inserted, deleted or swapped words would break"
    route = "/v1/entities"
    explainable = True
    explains = "spans"
    slice_columns = SHOWN

    # -- data ------------------------------------------------------------------------------

    def parse_label(self, raw: Any, *, text: str, where: str, data) -> Any:
        if raw is None:
            return MISSING
        return check_spans(raw, text=text, where=where)

    def label_names(self, frame: pd.DataFrame) -> list[str]:
        return sorted({s["label"] for spans in frame["label"] for s in spans})

    def check_trainable(self, labels: list[str], *, origin: str, label_column: str) -> None:
        if not labels:
            raise DataError(f"{origin}: column {label_column!r} marks no entity in any row; nothing to learn")

    def row_labels(self, target: Any) -> list[str]:
        return [s["label"] for s in target]

    # -- model -----------------------------------------------------------------------------

    def model_kwargs(self, labels: list[str]) -> dict:
        tags = tag_names(labels)
        return {"num_labels": len(tags), "id2label": dict(enumerate(tags)), "label2id": {t: i for i, t in enumerate(tags)}}

    def encode(self, tokenizer, frame: pd.DataFrame, labels: list[str], *, max_length: int) -> EncodedDataset:
        if not getattr(tokenizer, "is_fast", False):
            raise DataError("task entities needs a fast tokenizer (word boundaries and character offsets)")
        encoded = tokenizer(frame["text"].tolist(), truncation=True, max_length=max_length, return_offsets_mapping=True)
        index = {t: i for i, t in enumerate(tag_names(labels))}
        targets = [token_tags(encoded.word_ids(i), encoded["offset_mapping"][i], spans, index) for i, spans in enumerate(frame["label"])]
        columns = {k: v for k, v in encoded.items() if k != "offset_mapping"}
        return EncodedDataset({**columns, "labels": targets})

    def collator(self, tokenizer):
        from transformers import DataCollatorForTokenClassification

        return DataCollatorForTokenClassification(tokenizer)

    def validation_scores(self, targets: np.ndarray, logits: np.ndarray) -> dict[str, float]:
        """Entity-level scores on word tags (first word pieces only), as the Trainer hands them over."""
        predicted = np.asarray(logits).argmax(axis=-1)
        tags = np.asarray(targets)
        names = _tag_lookup(int(max(tags.max(), predicted.max())) + 1)
        gold, guess = [], []
        for row_true, row_pred in zip(tags, predicted):
            keep = np.flatnonzero(row_true != IGNORE)
            gold.append(decode_words([(names[int(row_true[i])], 1.0, k, k + 1) for k, i in enumerate(keep)]))
            guess.append(decode_words([(names[int(row_pred[i])], 1.0, k, k + 1) for k, i in enumerate(keep)]))
        metrics = entity_metrics(gold, guess, sorted({s["label"] for spans in gold + guess for s in spans}))
        return {k: metrics[k] for k in ("accuracy", "macro_f1", "micro_f1")}

    # -- inference -------------------------------------------------------------------------

    def infer(self, backend, texts: list[str], meta, *, batch_size: int, progress: str | None = None) -> list[list[Entity]]:
        logits, offsets, word_ids = backend.token_logits(texts, batch_size=batch_size)
        tags = tag_names(meta.labels)
        out = []
        for text, row, offs, ids in zip(texts, logits, offsets, word_ids):
            probs = softmax(row)
            words = [
                (tags[int(probs[first].argmax())], float(probs[first].max()), start, end)
                for _, (first, start, end) in sorted(word_ranges(ids, offs).items())
            ]
            out.append([Entity(text=text[s["start"] : s["end"]], **s) for s in decode_words(words)])
        return out

    def empty_raw(self, meta) -> list:
        return []

    def predictions(self, raw: list[list[Entity]], meta) -> list[EntitiesPrediction]:
        return [EntitiesPrediction(entities=list(row)) for row in raw]

    display_columns = ("entities",)

    def display(self, prediction: EntitiesPrediction) -> tuple[str, ...]:
        return ("; ".join(f"{e.label}: {e.text}" for e in prediction.entities) or "(none)",)

    def scoring_columns(self, raw: list[list[Entity]], meta) -> dict[str, list]:
        return {"entities": [json.dumps([asdict(e) for e in row], ensure_ascii=False) for row in raw]}

    # -- evaluation ------------------------------------------------------------------------

    def evaluation_options(self, config) -> dict:
        return {"slices": list(config.evaluate.slices), "min_slice_rows": config.evaluate.min_slice_rows}

    def evaluate(self, predictor, frame: pd.DataFrame, out_dir: Path, *, split: str, slices=(), min_slice_rows: int = 30) -> dict:
        texts = frame["text"].tolist()
        predicted = [[asdict(e) for e in row] for row in predictor.predict_raw(texts, progress=f"evaluating {split}")]
        gold = frame["label"].tolist()
        metrics = {"split": split, "task": self.name, **entity_metrics(gold, predicted, predictor.labels)}
        metrics["truncated_texts"] = int(sum(predictor.truncated(texts)))
        metrics["slices"] = slice_metrics(frame, gold, predicted, predictor.labels, columns=list(slices), min_rows=min_slice_rows)
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out_dir / "slices.json", metrics["slices"])
        atomic_write_json(out_dir / "metrics.json", metrics)
        f1 = {label: v["f1"] for label, v in metrics["per_type"].items()}
        save_bars_png(f1, out_dir / "per_type_f1.png", title=f"Entity F1 per type ({split}, n={len(frame)})", xlabel="F1")
        self._write_errors(frame, gold, predicted, out_dir / "errors.csv")
        return metrics

    @staticmethod
    def _write_errors(frame: pd.DataFrame, gold: list, predicted: list, path: Path) -> None:
        rows = []
        for source, text, truth, guess in zip(frame["source"], frame["text"], gold, predicted):
            t = {(s["label"], s["start"], s["end"]) for s in truth}
            g = {(s["label"], s["start"], s["end"]) for s in guess}
            for kind, where in (("missed", t - g), ("spurious", g - t)):
                for label, start, end in sorted(where, key=lambda x: x[1]):
                    rows.append({"source": source, "error": kind, "label": label, "start": start, "end": end, "span": text[start:end]})
        table = pd.DataFrame(rows[: ERRORS_KEPT * 4], columns=["source", "error", "label", "start", "end", "span"])
        with atomic_file(path, "w", encoding="utf-8", newline="") as fh:
            table.to_csv(fh, index=False)

    def headline(self, metrics: dict) -> dict[str, float]:
        return {k: metrics[k] for k in ("micro_f1", "macro_f1", "micro_precision", "micro_recall", "accuracy") if k in metrics}

    def card_results(self, metrics: dict) -> str:
        per_type = metrics.get("per_type", {})
        rows = "\n".join(
            f"| {label} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |" for label, v in per_type.items()
        )
        return f"""## Results on {metrics.get("split", "test")} (n={metrics.get("n")} texts, {metrics.get("entities_true")} entities)
- Entity-level micro F1: {metrics.get("micro_f1", float("nan")):.4f} (precision {metrics.get("micro_precision", float("nan")):.4f}, recall {metrics.get("micro_recall", float("nan")):.4f}); macro F1 over types: {metrics.get("macro_f1", float("nan")):.4f}
- An entity counts as found only with the right type and exactly the right span.

| type | precision | recall | F1 | support |
|---|---|---|---|---|
{rows}

{card_section(metrics.get("slices", {}), metric="f1", title="entity micro F1")}## Limitations
- Texts longer than the model window are cut; entities past the cut are not found ({metrics.get("truncated_texts", 0)} such texts in this split).
- See `eval/errors.csv` for missed and spurious entities.
"""


def _tag_lookup(size: int) -> list[str]:
    """Tag names by id for validation scoring, where only ids are at hand: the B/I/O prefix and a type number."""
    names = ["O"]
    for t in range((size - 1) // 2 + 1):
        names += [f"B-T{t}", f"I-T{t}"]
    return names[: max(size, 1)]
