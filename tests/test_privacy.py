"""Differential privacy for the head method: Opacus DP-SGD spends at most the requested ε, and the run says what it spent."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from tuneforge.config import PrivacyConfig, load_config
from tuneforge.engine.private import fit_private_linear
from tuneforge.engine.run import train
from tuneforge.errors import ConfigError
from tuneforge.tasks.classify.metrics import selection_scores

from conftest import write_config


def _blobs(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 8)).astype(np.float32) * 0.3
    x[:, 0] += np.where(y == 1, 1.0, -1.0)
    return x / np.linalg.norm(x, axis=1, keepdims=True), y


def test_spends_at_most_the_requested_epsilon_and_learns():
    x, y = _blobs()
    fit, spent = fit_private_linear(
        x[:300], y[:300], x[300:], y[300:], n_labels=2, privacy=PrivacyConfig(epsilon=3.0, epochs=10), seed=0, scores=selection_scores
    )
    assert spent["epsilon_spent"] <= 3.0 * 1.01 and spent["epsilon_spent"] > 1.0
    assert spent["delta"] == pytest.approx(1 / 3000) and spent["noise_multiplier"] > 0
    assert fit.scores["accuracy"] > 0.8  # a separable problem survives the noise


def test_more_privacy_means_more_noise():
    x, y = _blobs()
    noise = [
        fit_private_linear(x, y, x, y, n_labels=2, privacy=PrivacyConfig(epsilon=eps, epochs=5), seed=0, scores=selection_scores)[1][
            "noise_multiplier"
        ]
        for eps in (0.5, 8.0)
    ]
    assert noise[0] > noise[1]


@pytest.mark.parametrize(("method", "task"), [("tfidf", "classify"), ("auto", "classify"), ("head", "multilabel"), ("lora", "entities")])
def test_scope_is_checked_before_any_work(tmp_path, method, task):
    path = write_config(tmp_path, None, method=method)
    raw = yaml.safe_load(path.read_text())
    raw["train"]["privacy"] = {"epsilon": 3}
    raw["task"] = task
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(
        ConfigError, match=f"train.privacy: differentially private training covers train.method head .*got method {method} with task {task}"
    ):
        load_config(path)


def test_a_private_head_run_records_what_it_spent(tmp_path, tiny_bert):
    path = write_config(tmp_path, tiny_bert, method="head")
    raw = yaml.safe_load(path.read_text())
    raw["train"]["privacy"] = {"epsilon": 8, "epochs": 5}
    path.write_text(yaml.safe_dump(raw))
    result = train(load_config(path))
    info = json.loads((result.run_dir / "run.json").read_text())
    privacy = info["train"]["privacy"]
    assert privacy["epsilon_requested"] == 8 and 0 < privacy["epsilon_spent"] <= 8.08
    assert "Differentially private (DP-SGD, Opacus): ε spent" in (result.run_dir / "model_card.md").read_text()
    assert "ε spent" in (result.run_dir / "report.html").read_text()
