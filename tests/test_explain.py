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


def _one_word_decides(tmp_path):
    """A tfidf run on texts whose label is decided by one word: `zorblax` (yes) or `quimby` (no) among shared filler."""
    import random

    import yaml

    rng = random.Random(0)
    filler = [
        "the",
        "a",
        "cat",
        "dog",
        "sat",
        "ran",
        "on",
        "near",
        "mat",
        "door",
        "house",
        "tree",
        "blue",
        "green",
        "small",
        "big",
        "old",
        "new",
    ]
    rows = ["text,label"]
    for i in range(120):
        words = rng.sample(filler, 7)
        words.insert(rng.randrange(8), "zorblax" if i % 2 else "quimby")
        rows.append(f"{' '.join(words)},{'yes' if i % 2 else 'no'}")
    (tmp_path / "decided.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = {"data": {"train": str(tmp_path / "decided.csv")}, "train": {"method": "tfidf"}, "output": {"dir": str(tmp_path / "runs")}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return train(load_config(tmp_path / "config.yaml")).run_dir


def test_lime_finds_the_one_deciding_word(tmp_path):
    predictor = Predictor.load(_one_word_decides(tmp_path))
    text = "the small cat sat near zorblax the old door"
    result = explain(predictor, text, method="lime", num_samples=300, seed=3)
    assert result.method == "lime" and result.label == "yes"
    assert result.top(1)[0].text == "zorblax"
    assert result.top(1)[0].attribution > 3 * max(abs(w.attribution) for w in result.words if w.text != "zorblax")
    assert result.local_fit is not None and result.local_fit > 0.5
    assert all(result.text[w.start : w.end] == w.text for w in result.words) and len(result.words) == 9
    against = explain(predictor, text, label="no", method="lime", num_samples=300, seed=3)
    assert min(against.words, key=lambda w: w.attribution).text == "zorblax"  # the same word, now pushing away
    assert explain(predictor, text, method="linear").top(1)[0].text == "zorblax"  # LIME agrees with the exact answer


@pytest.mark.parametrize("method", ["full", "head"])
def test_lime_on_torch_models_is_seeded(runs, method):
    predictor = Predictor.load(runs[method])
    first = explain(predictor, TEXT, method="lime", num_samples=64, seed=7)
    assert first.method == "lime" and first.completeness is None and first.local_fit is not None
    assert [w.text for w in first.words][:3] == ["The", "headphones", "was"] and len(first.words) == 11
    assert all(first.text[w.start : w.end] == w.text for w in first.words)
    assert first.to_dict() == explain(predictor, TEXT, method="lime", num_samples=64, seed=7).to_dict()


def test_methods_a_model_cannot_take_are_refused(runs):
    from tuneforge.errors import ConfigError

    tfidf, full = Predictor.load(runs["tfidf"]), Predictor.load(runs["full"])
    with pytest.raises(ConfigError, match="method must be one of auto, ig, lime, linear, got 'shap'"):
        explain(tfidf, TEXT, method="shap")
    with pytest.raises(ConfigError, match="method ig: a tfidf model has no gradients"):
        explain(tfidf, TEXT, method="ig")
    with pytest.raises(ConfigError, match=f"method linear: exact contributions exist for tfidf models; this is a {full.meta.kind} model"):
        explain(full, TEXT, method="linear")
    assert explain(full, TEXT, method="ig", steps=8).method == "integrated_gradients"  # what auto picks, named
    assert explain(tfidf, TEXT, method="lime", num_samples=32).method == "lime"


def test_cli_explain_with_lime(runs, monkeypatch, capsys):
    args = ("explain", runs["tfidf"], TEXT, "--method", "lime", "--num-samples", "32", "--seed", "1", "--json")
    code, out, _ = run_cli(monkeypatch, capsys, *args)
    data = json.loads(out)
    assert code in (0, None) and data["method"] == "lime" and len(data["words"]) == 11 and data["local_fit"] is not None
    code, _, err = run_cli(monkeypatch, capsys, "explain", runs["tfidf"], TEXT, "--method", "ig")
    assert code not in (0, None) and "no gradients" in err


def test_service_explain_methods_and_limits(runs):
    from tuneforge.serve.routes.explain import MAX_SAMPLES

    app, _ = make_app([runs["full"]])
    with TestClient(app) as client:
        answer = client.post("/v1/explain", json={"text": TEXT, "method": "lime", "num_samples": 32, "seed": 2})
        assert answer.status_code == 200, answer.json()
        body = answer.json()
        assert body["method"] == "lime" and len(body["words"]) == 11 and body["local_fit"] is not None
        for bad, where in (
            ({"text": TEXT, "method": "shap"}, "method"),
            ({"text": TEXT, "method": "lime", "num_samples": MAX_SAMPLES + 1}, "num_samples"),
            ({"text": TEXT, "method": "lime", "num_samples": 10**12}, "num_samples"),
            ({"text": TEXT, "method": "lime", "num_samples": 2}, "num_samples"),
            ({"text": TEXT, "method": "lime", "num_samples": "many"}, "num_samples"),
            ({"text": TEXT, "method": "lime", "seed": -1}, "seed"),
            ({"text": TEXT, "method": "linear"}, "method: 'linear' is not offered here; this service's models all take auto, ig, lime"),
        ):
            wrong = client.post("/v1/explain", json=bad)
            assert wrong.status_code == 422 and where in wrong.json()["error"], (bad, wrong.json())
        # what the OpenAPI document offers is exactly what is taken (a transformer has no exact linear contributions)
        body = client.get("/openapi.json").json()["paths"]["/v1/explain"]["post"]["requestBody"]["content"]["application/json"]
        assert body["schema"]["properties"]["method"]["enum"] == ["auto", "ig", "lime"]


def test_an_explanation_that_times_out_keeps_its_slot_until_it_really_ends(runs, monkeypatch):
    """A worker thread cannot be stopped: after a 504 it runs on, so a second explanation must not start beside it."""
    import threading
    import time

    import tuneforge.analysis.explain as explain_module

    real, lock, running, most = explain_module.explain, threading.Lock(), [0], [0]

    def slow(*args, **kwargs):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            time.sleep(1.0)
            return real(*args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(explain_module, "explain", slow)
    app, _ = make_app([runs["tfidf"]], request_timeout_s=0.05)  # explanations get 6 x 0.05 = 0.3 s
    with TestClient(app) as client:
        late = client.post("/v1/explain", json={"text": TEXT})
        assert late.status_code == 504 and "finishes in the background" in late.json()["error"]
        busy = client.post("/v1/explain", json={"text": TEXT})  # the first one still computes
        assert busy.status_code == 429 and busy.headers["Retry-After"] == "1"
        time.sleep(1.2)  # the orphaned explanation has ended and freed the slot
        assert running[0] == 0
        again = client.post("/v1/explain", json={"text": TEXT})  # so the next one starts (and, as slow, times out)
        assert again.status_code == 504, again.json()
        time.sleep(1.2)
    assert most[0] == 1 and running[0] == 0
