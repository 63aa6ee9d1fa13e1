"""Rare positives: a threshold on the positive label tuned on validation, saved with the model, used by predict and evaluation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from tuneforge.config import load_config
from tuneforge.engine.run import train
from tuneforge.errors import ConfigError
from tuneforge.predict.predictor import Predictor
from tuneforge.tasks.classify.decision import decide, positive_index, precision_at_recall, tune_threshold


def test_the_threshold_with_the_best_positive_f1_wins():
    y = np.array([0] * 8 + [1] * 2)
    p_pos = np.array([0.05, 0.1, 0.1, 0.2, 0.2, 0.25, 0.3, 0.45, 0.35, 0.4])  # both positives sit below 0.5
    probs = np.stack([1 - p_pos, p_pos], axis=1)
    decision = tune_threshold(y, probs, 1)
    assert decision["threshold"] == pytest.approx(0.35) and decision["validation_f1"] == pytest.approx(0.8)
    assert decide(probs, decision).tolist() == [0, 0, 0, 0, 0, 0, 0, 1, 1, 1]
    assert decide(probs, None).tolist() == [0] * 10  # the most probable label misses every positive
    assert precision_at_recall(y, probs, 1, 1.0) == pytest.approx(2 / 3, abs=1e-4)


def test_positive_label_must_fit_the_data():
    with pytest.raises(ConfigError, match="two-label classification; this data has 3 labels"):
        positive_index(["a", "b", "c"], "a")
    with pytest.raises(ConfigError, match="'fraud' is not a label"):
        positive_index(["ham", "spam"], "fraud")


def test_a_run_tunes_saves_and_applies_the_threshold(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(400):
        spam = i % 8 == 0
        words = ["win", "prize", "call", "now", "free"] if spam else ["see", "you", "at", "lunch", "today"]
        noise = rng.choice(["ok", "thanks", "later", "cool", "free", "now"], size=3)
        rows.append({"text": " ".join(rng.choice(words, size=3).tolist() + noise.tolist()) + f" {i}", "label": "spam" if spam else "ham"})
    pd.DataFrame(rows).to_csv(tmp_path / "sms.csv", index=False)
    config = {
        "data": {"train": str(tmp_path / "sms.csv")},
        "train": {"method": "tfidf", "positive_label": "spam"},
        "output": {"dir": str(tmp_path / "runs")},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    result = train(load_config(tmp_path / "c.yaml"))
    meta = json.loads((result.run_dir / "model" / "tuneforge.json").read_text())
    decision = meta["extra"]["decision"]
    assert decision["positive"] == 1 and 0 < decision["threshold"] < 1
    metrics = json.loads((result.run_dir / "eval" / "metrics.json").read_text())
    assert metrics["decision"]["positive_label"] == "spam" and metrics["precision_at_recall_0.9"] is not None
    assert (result.run_dir / "eval" / "precision_recall.png").is_file()
    predictor = Predictor.load(result.run_dir)
    probs = predictor.predict_proba(["win prize call now free ok", "see you at lunch today ok"])
    labels = [p.label for p in predictor.predict(["win prize call now free ok", "see you at lunch today ok"])]
    assert labels == ["spam" if probs[i, 1] >= decision["threshold"] else "ham" for i in range(2)]
