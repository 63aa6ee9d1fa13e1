"""Explanations: exact linear contributions for tfidf, integrated gradients for transformer and head models; CLI and service."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tuneforge.analysis.explain import explain
from tuneforge.config import load_config
from tuneforge.engine.run import train
from tuneforge.errors import DataError
from tuneforge.predict.predictor import Predictor

from conftest import run_cli, write_config
from serve_helpers import make_app

TEXT = "The headphones was excellent and fantastic, but the blender was terrible."


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_bert):
    out = {}
    for method in ("tfidf", "full", "head"):
        folder = tmp_path_factory.mktemp(method)
        out[method] = train(load_config(write_config(folder, tiny_bert, method=method, epochs=1))).run_dir
    return out


def test_tfidf_contributions_are_exact(runs):
    predictor = Predictor.load(runs["tfidf"])
    result = explain(predictor, TEXT)
    backend = predictor.backend
    logits = backend.logits([result.text], batch_size=1)[0]
    target = predictor.labels.index(result.label)
    relative = (logits[target] - logits.mean()) - (backend.bias[target] - backend.bias.mean())
    assert sum(w.attribution for w in result.words) == pytest.approx(relative, abs=1e-4)
    assert all(result.text[w.start : w.end] == w.text for w in result.words)
    assert result.method == "linear" and result.label == predictor.predict([TEXT])[0].label


def test_deleting_the_top_words_hurts_more_than_deleting_others(runs):
    predictor = Predictor.load(runs["tfidf"])
    result = explain(predictor, TEXT)
    top = result.top(1)[0]
    bottom = min(result.words, key=lambda w: w.attribution)
    p = lambda t: predictor.predict_proba([t])[0][predictor.labels.index(result.label)]  # noqa: E731
    without_top = result.text[: top.start] + result.text[top.end :]
    without_bottom = result.text[: bottom.start] + result.text[bottom.end :]
    assert p(without_top) < p(result.text) < p(without_bottom)


@pytest.mark.parametrize("method", ["full", "head"])
def test_integrated_gradients_on_torch_models(runs, method):
    predictor = Predictor.load(runs[method])
    result = explain(predictor, TEXT, steps=64)
    assert result.method == "integrated_gradients"
    assert [w.text for w in result.words][:3] == ["The", "headphones", "was"]
    assert all(result.text[w.start : w.end] == w.text for w in result.words)
    assert result.completeness is not None and result.completeness < 0.05  # IG's own check: attributions add up
    other = next(label for label in predictor.labels if label != result.label)
    assert explain(predictor, TEXT, label=other, steps=16).label == other
    with pytest.raises(DataError, match="not one of the model's labels"):
        explain(predictor, TEXT, label="nope")


def test_cli_explain(runs, monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "explain", runs["tfidf"], TEXT, "--json")
    data = json.loads(out)
    assert code in (0, None) and data["method"] == "linear" and len(data["words"]) == 11
    code, out, _ = run_cli(monkeypatch, capsys, "explain", runs["tfidf"], TEXT)
    assert "strongest words" in out


def test_service_explain(runs):
    app, _ = make_app([runs["full"]])
    with TestClient(app) as client:
        answer = client.post("/v1/explain", json={"text": TEXT, "steps": 8})
        assert answer.status_code == 200
        body = answer.json()
        assert body["method"] == "integrated_gradients" and body["words"] and np.isfinite(body["score"])
        for bad, where in (
            ({"text": "  "}, "empty"),
            ({"text": TEXT, "label": "nope"}, "not one of"),
            ({"text": TEXT, "steps": 1}, "steps"),
        ):
            wrong = client.post("/v1/explain", json=bad)
            assert wrong.status_code == 422 and where in wrong.json()["error"], wrong.json()
