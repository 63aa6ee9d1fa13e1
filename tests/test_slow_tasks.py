"""The new tasks end to end with the real packaged MiniLM on real packaged data (marked slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tuneforge.config import load_config
from tuneforge.engine.run import train
from tuneforge.predict.predictor import Predictor

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).parent.parent / "examples"


def test_multilabel_head_on_movielens_genres(tmp_path):
    pytest.importorskip("recbole", reason="install with: pip install --no-deps recbole==1.2.1")
    result = train(load_config(EXAMPLES / "movielens-genres-head.yaml", [f"output.dir={tmp_path}", "train.head.c_grid=[1.0]"]))
    metrics = json.loads((Path(result.run_dir) / "eval" / "metrics.json").read_text())
    assert metrics["n"] == 168 and len(metrics["per_label"]) == 18
    assert metrics["micro_f1"] > 0.3, metrics["micro_f1"]  # genres from a title alone: hard; chance-level tagging scores ~0.15
    [toy_story] = Predictor.load(result.run_dir).predict(["Toy Story 2 (1999)"])
    assert toy_story.labels and set(toy_story.scores) == set(metrics["per_label"])


def test_entities_full_on_rule_marked_bbc_sentences(tmp_path):
    overrides = [f"output.dir={tmp_path}", "data.max_rows=800", "train.max_length=48", "train.epochs=2", "train.learning_rate=3e-4"]
    result = train(load_config(EXAMPLES / "bbc-entities-full.yaml", overrides))
    metrics = json.loads((Path(result.run_dir) / "eval" / "metrics.json").read_text())
    assert set(metrics["per_type"]) == {"DATE", "MONEY", "PERCENT"}
    assert metrics["micro_f1"] > 0.6, metrics
    text = "Shares rose 5% on Monday after profits of £120m."
    [prediction] = Predictor.load(result.run_dir).predict([text])
    assert all(text[e.start : e.end] == e.text for e in prediction.entities)
    assert {e.label for e in prediction.entities} & {"PERCENT", "DATE", "MONEY"}
