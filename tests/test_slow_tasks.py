"""The new tasks end to end with the real packaged MiniLM on real packaged data (marked slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tuneforge.analysis.explain import explain
from tuneforge.config import load_config
from tuneforge.engine.run import train
from tuneforge.predict.predictor import Predictor

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).parent.parent / "examples"


def test_multilabel_head_on_movielens_genres(tmp_path):
    pytest.importorskip("recbole", reason="install with: pip install --no-deps recbole==1.2.1")
    result = train(load_config(EXAMPLES / "movielens-genres-head.yaml", [f"output.dir={tmp_path}", "train.head.c_grid=[1.0]"]))
    metrics = json.loads((Path(result.run_dir) / "eval" / "metrics.json").read_text())
    assert 150 <= metrics["n"] <= 170 and len(metrics["per_label"]) == 18  # a tenth of 1,681 movies, less duplicate titles
    assert metrics["micro_f1"] > 0.3, metrics["micro_f1"]  # genres from a title alone: hard; chance-level tagging scores ~0.15
    predictor = Predictor.load(result.run_dir)
    [toy_story] = predictor.predict(["Toy Story 2 (1999)"])
    assert toy_story.labels and set(toy_story.scores) == set(metrics["per_label"])
    slices = json.loads((Path(result.run_dir) / "eval" / "slices.json").read_text())
    assert {"text_length", "label"} <= set(slices) and len(slices["label"]["groups"]) >= 18
    why = explain(predictor, "Toy Story 2 (1999)", steps=32)  # integrated gradients through the frozen encoder and its head
    assert [x.label for x in why.labels] == toy_story.labels
    assert all(x.completeness < 0.05 * max(1.0, abs(sum(w.attribution for w in x.words))) for x in why.labels)


def test_entities_full_on_rule_marked_bbc_sentences(tmp_path):
    overrides = [f"output.dir={tmp_path}", "data.max_rows=2000", "train.max_length=48", "train.epochs=3", "train.learning_rate=2e-4"]
    result = train(load_config(EXAMPLES / "bbc-entities-full.yaml", overrides))
    metrics = json.loads((Path(result.run_dir) / "eval" / "metrics.json").read_text())
    assert set(metrics["per_type"]) == {"DATE", "MONEY", "PERCENT"}
    assert metrics["micro_f1"] > 0.6, metrics
    text = "Shares rose 5% on Monday after profits of £120m."
    [prediction] = Predictor.load(result.run_dir).predict([text])
    assert all(text[e.start : e.end] == e.text for e in prediction.entities)
    assert {e.label for e in prediction.entities} & {"PERCENT", "DATE", "MONEY"}
    slices = json.loads((Path(result.run_dir) / "eval" / "slices.json").read_text())
    assert {"text_length", "entity_type"} <= set(slices)
    why = explain(Predictor.load(result.run_dir), text, steps=32)  # one IG run per found span, on the real encoder
    assert [(e.label, e.start) for e in why.entities] == [(e.label, e.start) for e in prediction.entities]
    assert all(e.completeness < 0.05 * max(1.0, abs(sum(w.attribution for w in e.words))) for e in why.entities)


def test_warm_started_real_fine_tune_starts_at_the_probe_score(tmp_path):
    """LP-FT on the real MiniLM: the step-0 evaluation of the fine-tune equals the probe's validation score."""
    from tuneforge.rundir import RunDir

    overrides = [f"output.dir={tmp_path}", "data.max_rows=300", "train.epochs=1", "train.max_length=64", "train.head.c_grid=[1.0]"]
    result = train(load_config(EXAMPLES / "bbc-news-full.yaml", overrides))
    lines = [json.loads(x) for x in RunDir(result.run_dir).metrics_file.read_text().splitlines()]
    probe = [x["eval_macro_f1"] for x in lines if x.get("probe")]
    start = next(x for x in lines if "eval_macro_f1" in x and not x.get("baseline"))
    assert start["step"] == 0 and start["eval_macro_f1"] == pytest.approx(probe[0], abs=0.02)
    info = result.train_info
    assert info["warm_start"] == "probe"
    # the floor: the best of the probe and TF-IDF on validation is kept only if strictly above the fine-tune
    scores = {name: info[f"{name}_validation_macro_f1"] for name in ("best", "probe", "tfidf")}
    floor = max(("probe", "tfidf"), key=scores.get)
    assert info["kept"] == (floor if scores[floor] > scores["best"] else "fine-tuned"), scores


def test_recommend_auto_on_movielens_end_to_end(tmp_path):
    """Every method on real MovieLens-100K with the real MiniLM reading item text; the winner is served."""
    pytest.importorskip("recbole", reason="install with: pip install --no-deps recbole==1.2.1")
    from fastapi.testclient import TestClient

    from serve_helpers import make_app

    result = train(load_config(EXAMPLES / "movielens-recommend.yaml", [f"output.dir={tmp_path}"]))
    table = {r["method"]: r for r in result.train_info["validation_table"]}
    assert set(table) == {"popular", "als", "bpr", "ease", "content", "hybrid"}
    best = table[result.train_info["method"]]
    assert best["ndcg@10"] >= 1.1 * table["als"]["ndcg@10"] and best["ndcg@10"] >= 2 * table["popular"]["ndcg@10"], table
    assert table["content"]["ndcg@10"] > 0.5 * table["popular"]["ndcg@10"]  # the encoder reads something useful from titles
    metrics = result.metrics
    assert metrics["users"] == 943 and metrics["hr@10"] > 0.15, metrics["hr@10"]
    assert metrics["cold_items"]["among_new_items"]["hr@10"] > 0.6  # random order among ~84 new items gives ~0.45
    app, _ = make_app([result.run_dir])
    with TestClient(app) as client:
        answer = client.post("/v1/recommend", json={"user": "196", "k": 5, "filters": {"genres": "Comedy"}}).json()
        assert answer["known_user"] and len(answer["items"]) == 5
        assert all("Comedy" in r["attributes"]["genres"] for r in answer["items"])
        similar = client.post("/v1/similar", json={"item": "1", "k": 5}).json()  # Toy Story
        assert any("Animation" in r["attributes"]["genres"] or "Children" in r["attributes"]["genres"] for r in similar["items"])


def test_private_head_and_integrated_gradients_on_the_real_encoder(tmp_path):
    """DP-SGD head on real BBC News embeddings keeps its ε and stays useful; IG on the real model adds up."""
    overrides = [f"output.dir={tmp_path}", "train.method=head", "train.max_length=64", "data.max_rows=600", "train.privacy={epsilon: 8}"]
    result = train(load_config(EXAMPLES / "bbc-news-head.yaml", overrides))
    privacy = result.train_info["privacy"]
    assert privacy["epsilon_spent"] <= 8 * 1.01 and result.metrics["accuracy"] > 0.5, (privacy, result.metrics["accuracy"])
    predictor = Predictor.load(result.run_dir)
    why = explain(predictor, "Shares fell after the bank cut its profit forecast", steps=32)
    assert why.method == "integrated_gradients" and why.completeness < 0.05 * max(1.0, abs(sum(w.attribution for w in why.words)))
