"""Explanations beyond classify: per label for multilabel (linear and IG), per found span for entities; CLI and service."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from task_data import entity_rows, multilabel_rows, write_jsonl

from tuneforge.analysis.explain import explain
from tuneforge.config import validate_config
from tuneforge.engine.run import train
from tuneforge.errors import DataError
from tuneforge.predict.predictor import Predictor

from conftest import run_cli
from serve_helpers import make_app

ML_TEXT = "The phone and the lamp arrived great"
ENT_TEXT = "The chair was fine and the book was awful"


def _unique(rows):
    """Every text once (cleaning drops duplicates, and the synthetic rows repeat)."""
    return [r | {"text": f"{r['text']} order {i}"} for i, r in enumerate(rows)]


def _train(folder, task, rows, model, **settings):
    raw = {
        "task": task,
        "data": {"train": str(write_jsonl(folder / "train.jsonl", rows)), "label_column": "tags" if task == "multilabel" else "entities"},
        "model": {"name": str(model) if model else "minilm-l6"},
        "train": {"batch_size": 8, "max_length": 24, "learning_rate": 5e-3, "seed": 3, **settings},
        "output": {"dir": str(folder / "runs")},
    }
    return train(validate_config(raw)).run_dir


@pytest.fixture(scope="module")
def ml_tfidf(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("ml-tfidf"), "multilabel", _unique(multilabel_rows(240, seed=1)), None, method="tfidf")


@pytest.fixture(scope="module")
def ml_full(tmp_path_factory, tiny_bert):
    return _train(
        tmp_path_factory.mktemp("ml-full"), "multilabel", _unique(multilabel_rows(160, seed=1)), tiny_bert, method="full", epochs=2
    )


@pytest.fixture(scope="module")
def ents(tmp_path_factory, tiny_bert):
    return _train(tmp_path_factory.mktemp("ents"), "entities", entity_rows(300, seed=2), tiny_bert, method="full", epochs=8)


def test_multilabel_tfidf_contributions_sum_to_each_labels_logit(ml_tfidf):
    predictor = Predictor.load(ml_tfidf)
    result = explain(predictor, ML_TEXT)
    predicted = predictor.predict([ML_TEXT])[0].labels
    assert result.method == "linear" and [x.label for x in result.labels] == predicted and {"lamp", "phone"} <= set(predicted)
    backend = predictor.backend
    logits = backend.logits([result.text], batch_size=1)[0]
    for x in result.labels:
        j = predictor.labels.index(x.label)
        # independent sigmoids: the words sum to the label's own logit minus its bias (no average label to compete with)
        assert sum(w.attribution for w in x.words) == pytest.approx(logits[j] - backend.bias[j], abs=1e-4)
        assert x.predicted and x.score >= x.threshold
        assert max(x.words, key=lambda w: w.attribution).text.lower() == x.label  # "phone" is why it says phone
    [chair] = explain(predictor, ML_TEXT, label="chair").labels
    assert chair.label == "chair" and not chair.predicted
    with pytest.raises(DataError, match=r"label: 'sofa' is not one of the model's labels"):
        explain(predictor, ML_TEXT, label="sofa")


def test_multilabel_integrated_gradients(ml_full):
    predictor = Predictor.load(ml_full)
    result = explain(predictor, ML_TEXT, steps=64)
    assert result.method == "integrated_gradients" and result.labels
    for x in result.labels:
        assert [w.text for w in x.words] == ML_TEXT.split()
        assert x.completeness is not None and x.completeness < 0.05  # IG's own check: attributions add up
    [lamp] = explain(predictor, ML_TEXT, label="lamp", steps=16).labels
    assert lamp.label == "lamp"


def test_entity_spans_are_explained_by_their_context(ents):
    predictor = Predictor.load(ents)
    result = explain(predictor, ENT_TEXT, steps=64)
    found = {(e.label, e.text) for e in result.entities}
    assert {("PRODUCT", "chair"), ("FEELING", "fine")} <= found
    for e in result.entities:
        assert ENT_TEXT[e.start : e.end] == e.text and [w.text for w in e.words] == ENT_TEXT.split()
        assert e.completeness is not None and e.completeness < 0.05
        # the span's own word carries attribution, and so does its context
        assert any(w.start == e.start for w in e.words) and any(abs(w.attribution) > 0 for w in e.words if w.start != e.start)
    feelings = explain(predictor, ENT_TEXT, label="FEELING", steps=8).entities
    assert feelings and {e.label for e in feelings} == {"FEELING"}
    with pytest.raises(DataError, match=r"label: 'DATE' is not one of the model's entity types \(FEELING, PRODUCT\)"):
        explain(predictor, ENT_TEXT, label="DATE")


def test_cli_explains_each_label_and_span(ml_tfidf, ents, monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "explain", ml_tfidf, ML_TEXT, "--json")
    data = json.loads(out)
    assert code in (0, None) and {"lamp", "phone"} <= {x["label"] for x in data["labels"]}
    code, out, _ = run_cli(monkeypatch, capsys, "explain", ents, ENT_TEXT, "--steps", "8")
    assert code in (0, None) and "PRODUCT 'chair'" in out and out.count("strongest words") >= 2  # one table per span


def test_service_explains_multilabel_and_entities(ml_tfidf, ents):
    app, _ = make_app([f"tags={ml_tfidf}", f"ents={ents}"])
    with TestClient(app) as client:
        body = client.post("/v1/explain", json={"text": ML_TEXT}).json()  # the first explainable model
        assert body["model"] == "tags" and body["method"] == "linear" and {"lamp", "phone"} <= {x["label"] for x in body["labels"]}
        body = client.post("/v1/explain", json={"text": ENT_TEXT, "model": "ents", "steps": 8}).json()
        assert body["model"] == "ents" and ("PRODUCT", "chair") in {(e["label"], e["text"]) for e in body["entities"]}
        assert all(np.isfinite(w["attribution"]) for e in body["entities"] for w in e["words"])
        for bad, status, where in (
            ({"text": ML_TEXT, "model": "tags", "label": "sofa"}, 422, "'sofa'"),
            ({"text": ENT_TEXT, "model": "ents", "label": "DATE"}, 422, "'DATE'"),
            ({"text": "  ", "model": "ents"}, 422, "empty"),
            ({"text": ENT_TEXT, "model": "nope"}, 404, "nope"),
        ):
            wrong = client.post("/v1/explain", json=bad)
            assert wrong.status_code == status and where in wrong.json()["error"], wrong.json()
        schema = client.get("/openapi.json").json()
        request = schema["paths"]["/v1/explain"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert request["properties"]["model"]["anyOf"][0]["enum"] == ["tags", "ents"]
