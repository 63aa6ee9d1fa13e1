"""Fairness slices for multilabel and entities: metrics checked by hand on tiny tables, and wired into a run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from task_data import entity_rows, multilabel_rows, write_jsonl

from tuneforge.analysis.report import build_report
from tuneforge.config import validate_config
from tuneforge.engine.run import train
from tuneforge.errors import DataError
from tuneforge.tasks.entities.slices import slice_metrics as entity_slices
from tuneforge.tasks.multilabel.slices import slice_metrics as multilabel_slices
from tuneforge.tasks.slicing import length_groups


def _frame(shops, texts=None):
    texts = texts or [f"text {'x' * i}" for i in range(len(shops))]
    return pd.DataFrame({"text": texts, "label": [None] * len(shops), "source": ["f"] * len(shops), "shop": shops})


def test_multilabel_slices_by_hand():
    # labels a, b; shop x: {a}->{a}, {a,b}->{a}; shop y: {b}->{a}, {}->{}
    y_true = np.array([[1, 0], [1, 1], [0, 1], [0, 0]], dtype=bool)
    y_pred = np.array([[1, 0], [1, 0], [1, 0], [0, 0]], dtype=bool)
    out = multilabel_slices(_frame(["x", "x", "y", "y"]), y_true, y_pred, ["a", "b"], columns=["shop"], min_rows=2)
    x, y = out["shop"]["groups"]["x"], out["shop"]["groups"]["y"]
    # x: TP 2, FP 0, FN 1 -> micro F1 0.8; label a F1 1, label b F1 0 -> macro 0.5; one of two texts fully right
    assert (x["n"], x["micro_f1"], x["macro_f1"], x["subset_accuracy"]) == (2, 0.8, 0.5, 0.5)
    assert (x["mean_labels_predicted"], x["mean_labels_true"]) == (1.0, 1.5)
    assert (y["micro_f1"], y["macro_f1"], y["subset_accuracy"]) == (0.0, 0.0, 0.5)
    assert out["shop"]["largest_gap"] == {"micro_f1": 0.8, "macro_f1": 0.5, "subset_accuracy": 0.0}
    presence = out["label"]
    assert presence["overlapping"] and set(presence["groups"]) == {"a", "b", "(none)"}
    # rows holding b (2 and 3): TP 1, FP 1, FN 2 -> P 1/2, R 1/3, F1 0.4
    assert presence["groups"]["b"]["micro_f1"] == 0.4 and presence["groups"]["a"]["micro_f1"] == 0.8
    assert presence["groups"]["(none)"]["small"] and presence["judged_groups"] == 2
    assert presence["largest_gap"] == {"micro_f1": 0.4, "subset_accuracy": 0.5}
    assert set(out) == {"shop", "text_length", "label"}


def test_entity_slices_by_hand():
    gold = [
        [{"label": "P", "start": 0, "end": 3}, {"label": "F", "start": 4, "end": 8}],
        [{"label": "P", "start": 0, "end": 3}],
        [{"label": "F", "start": 0, "end": 4}],
        [],
    ]
    predicted = [
        [{"label": "P", "start": 0, "end": 3}],
        [{"label": "P", "start": 0, "end": 3}, {"label": "F", "start": 4, "end": 6}],
        [],
        [],
    ]
    texts = ["one two", "one two three", "one", "one two three four"]
    out = entity_slices(_frame(["x", "x", "y", "y"], texts), gold, predicted, ["F", "P"], columns=["shop"], min_rows=1)
    x, y = out["shop"]["groups"]["x"], out["shop"]["groups"]["y"]
    # x: TP 2, FP 1, FN 1 -> P = R = F1 = 2/3; y: one missed entity, nothing found -> 0
    assert (x["precision"], x["recall"], x["f1"], x["entities_true"]) == (0.6667, 0.6667, 0.6667, 3)
    assert (y["precision"], y["recall"], y["f1"], y["entities_true"]) == (0.0, 0.0, 0.0, 1)
    assert out["shop"]["largest_gap"] == {"precision": 0.6667, "recall": 0.6667, "f1": 0.6667}
    # texts containing an F (rows 1 and 3): TP 1, FP 0, FN 2 -> P 1, R 1/3, F1 0.5
    f = out["entity_type"]["groups"]["F"]
    assert (f["n"], f["precision"], f["recall"], f["f1"]) == (2, 1.0, 0.3333, 0.5)
    assert out["entity_type"]["groups"]["(none)"]["n"] == 1
    assert all(g.endswith("words") for g in out["text_length"]["groups"])


def test_word_length_quartiles_and_unknown_columns():
    texts = pd.Series([" ".join(["w"] * n) for n in range(1, 41)])
    assert length_groups(texts, unit="words").nunique() == 4
    with pytest.raises(DataError, match=r"evaluate.slices: no column 'region'.*shop"):
        multilabel_slices(_frame(["x"]), np.ones((1, 1), bool), np.ones((1, 1), bool), ["a"], columns=["region"], min_rows=1)


def _run(tmp_path, task, rows, model, **train_settings):
    train_file = write_jsonl(tmp_path / "train.jsonl", rows)
    raw = {
        "task": task,
        "data": {"train": str(train_file), "label_column": "tags" if task == "multilabel" else "entities"},
        "model": {"name": str(model) if model else "minilm-l6"},
        "train": {"epochs": 2, "batch_size": 8, "max_length": 24, "learning_rate": 5e-3, "seed": 3, **train_settings},
        "evaluate": {"slices": ["shop"], "min_slice_rows": 5},
        "output": {"dir": str(tmp_path / "runs")},
    }
    return train(validate_config(raw))


def test_a_multilabel_run_writes_slices_card_and_report(tmp_path):
    rows = [r | {"text": f"{r['text']} order {i}"} for i, r in enumerate(multilabel_rows(200, seed=1))]  # no duplicates dropped
    result = _run(tmp_path, "multilabel", rows, None, method="tfidf")
    slices = json.loads((result.run_dir / "eval" / "slices.json").read_text())
    assert set(slices) == {"shop", "text_length", "label"}
    assert sum(g["n"] for g in slices["shop"]["groups"].values()) == result.metrics["n"]
    assert "- By shop: micro F1" in (result.run_dir / "model_card.md").read_text()
    page = build_report([result.run_dir])
    assert "<h3>By shop</h3>" in page and "subset accuracy" in page


def test_an_entities_run_writes_slices(tmp_path, tiny_bert):
    rows = [r | {"shop": "north" if i % 3 else "south"} for i, r in enumerate(entity_rows(120, seed=2))]
    result = _run(tmp_path, "entities", rows, tiny_bert, method="full")
    slices = json.loads((result.run_dir / "eval" / "slices.json").read_text())
    assert set(slices) == {"shop", "text_length", "entity_type"}
    assert set(slices["entity_type"]["groups"]) <= {"FEELING", "PRODUCT", "(none)"}
    assert sum(g["n"] for g in slices["shop"]["groups"].values()) == result.metrics["n"]
    assert "<h3>By entity_type</h3>" in build_report([result.run_dir])
