"""`method: lstm`: a BiLSTM learnt from scratch, trained, saved, reloaded and served like tfidf."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tuneforge.config import load_config
from tuneforge.engine.run import train
from tuneforge.errors import ConfigError
from tuneforge.models.lstm import PAD, UNK, WordTokenizer
from tuneforge.predict.predictor import Predictor
from tuneforge.rundir import RunDir

from conftest import run_cli

LSTM = {"embedding_dim": 16, "hidden_size": 16, "min_freq": 1}
ANIMALS = ["cat", "dog", "bird", "fish"]
FILLER = ["the", "a", "one", "small", "big", "old", "new", "red", "blue", "green", "this", "that", "my", "your"]


def _synthetic(n_per_label: int, seed: int = 0) -> pd.DataFrame:
    """Four labels, each carried by one keyword somewhere among random filler words."""
    rng = np.random.default_rng(seed)
    rows = []
    for label in ANIMALS:
        for _ in range(n_per_label):
            words = list(rng.choice(FILLER, size=int(rng.integers(3, 12))))
            words.insert(int(rng.integers(0, len(words) + 1)), label)
            rows.append((" ".join(words), label))
    return pd.DataFrame(rows, columns=["text", "label"])


def _config(tmp_path, train_file, task: str = "classify", **train):
    settings = {
        "method": "lstm",
        "batch_size": 16,
        "max_epochs": 15,
        "learning_rate": 1e-2,
        "early_stopping_patience": 3,
        "seed": 3,
        "lstm": LSTM,
        **train,
    }
    overrides = [f"output.dir={tmp_path / 'runs'}"]
    return load_config(None, overrides, base={"task": task, "data": {"train": str(train_file)}, "train": settings})


@pytest.fixture(scope="module")
def lstm_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lstm")
    path = folder / "animals.csv"
    _synthetic(40).to_csv(path, index=False)
    return train(_config(folder, path)), path, folder


def test_learns_a_keyword_task_well_above_chance(lstm_run):
    result, _, _ = lstm_run
    assert result.metrics["accuracy"] >= 0.9  # chance is 0.25
    info = RunDir(result.run_dir).info()
    assert info["status"] == "complete" and info["method"] == "lstm"
    assert 1 <= info["train"]["best_epoch"] <= info["train"]["stopped_epoch"] <= 15
    assert info["train"]["throughput"]["padding_share"] < 0.5  # length-bucketed batches
    epochs = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == list(range(1, info["train"]["stopped_epoch"] + 1))
    assert all("eval_macro_f1" in e for e in epochs)


def test_run_folder_has_safe_artifacts_cost_and_card(lstm_run):
    result, _, _ = lstm_run
    model_dir = result.run_dir / "model"
    assert {p.name for p in model_dir.iterdir()} == {"model.safetensors", "lstm.json", "tuneforge.json"}
    saved = json.loads((model_dir / "lstm.json").read_text())
    assert saved["vocabulary"][:2] == [PAD, UNK] and "cat" in saved["vocabulary"]
    assert json.loads((model_dir / "tuneforge.json").read_text())["kind"] == "lstm"
    cost = json.loads((result.run_dir / "cost.json").read_text())
    assert cost["wall_seconds"] > 0 and cost["peak_rss_mb"] > 0
    card = (result.run_dir / "model_card.md").read_text()
    assert "`lstm` (no pretrained weights" in card and "words (longer texts are truncated)" in card
    assert (result.run_dir / "eval" / "metrics.json").is_file()


def test_reload_gives_identical_predictions_and_the_validation_score(lstm_run):
    result, _, _ = lstm_run
    validation = RunDir(result.run_dir).read_split("validation")
    first, second = Predictor.load(result.run_dir), Predictor.load(result.run_dir / "model")
    probs = first.predict_proba(validation["text"].tolist())
    np.testing.assert_array_equal(probs, second.predict_proba(validation["text"].tolist()))
    from sklearn.metrics import f1_score

    predicted = [first.labels[i] for i in probs.argmax(axis=1)]
    best = RunDir(result.run_dir).info()["train"]["best_validation_macro_f1"]
    assert f1_score(validation["label"], predicted, average="macro") == pytest.approx(best, abs=1e-6)


def test_public_predictor_api(lstm_run):
    result, _, _ = lstm_run
    predictor = Predictor.load(result.run_dir)
    out = predictor.predict(["my old cat", "a big dog", "the blue fish", ""])
    assert [p.label for p in out[:3]] == ["cat", "dog", "fish"]
    assert all(sum(p.probabilities.values()) == pytest.approx(1.0, abs=1e-5) for p in out)
    texts = [f"the {'red ' * k}bird" for k in range(1, 10)]
    one_by_one = np.vstack([predictor.predict_proba([t]) for t in texts])
    np.testing.assert_allclose(predictor.predict_proba(texts, batch_size=4), one_by_one, atol=1e-5)
    # past the window (max_length words) a text is truncated, or scored in chunks
    words = [FILLER[i % len(FILLER)] for i in range(200)] + ["fish"]
    long_text = " ".join(words)
    assert predictor.truncated([long_text, "a cat"]) == [True, False]
    chunked = Predictor.load(result.run_dir, long_texts="chunk")
    windows = [" ".join(words[:128]), " ".join(words[96:])]  # 128 words, a quarter overlapping
    np.testing.assert_allclose(chunked.predict_proba([long_text])[0], predictor.predict_proba(windows).mean(axis=0), atol=1e-6)


def test_same_seed_same_model(lstm_run, tmp_path):
    result, path, _ = lstm_run
    again = train(_config(tmp_path, path))
    a = (result.run_dir / "model" / "model.safetensors").read_bytes()
    assert a == (again.run_dir / "model" / "model.safetensors").read_bytes()


def test_predict_and_evaluate_from_the_cli(lstm_run, monkeypatch, capsys, tmp_path):
    result, _, _ = lstm_run
    code, out, _ = run_cli(monkeypatch, capsys, "predict", result.run_dir, "--json", "a small dog")
    assert code == 0 and json.loads(out.strip())["label"] == "dog"
    held_out = tmp_path / "held_out.csv"
    _synthetic(5, seed=9).to_csv(held_out, index=False)
    code, _, _ = run_cli(monkeypatch, capsys, "evaluate", result.run_dir, "--data", held_out)
    assert code == 0
    assert json.loads((result.run_dir / "eval" / "held_out" / "metrics.json").read_text())["accuracy"] >= 0.9


def test_serves_the_classify_route(lstm_run):
    from fastapi.testclient import TestClient

    from serve_helpers import make_app

    result, _, _ = lstm_run
    app, _ = make_app([f"animals={result.run_dir}"])
    with TestClient(app) as client:
        answer = client.post("/v1/classify", json={"texts": ["a green bird", " ".join(["the"] * 300)]})
        assert answer.status_code == 200, answer.text
        assert answer.json()["results"][0]["label"] == "bird"
        assert [x["truncated"] for x in answer.json()["results"]] == [False, True]
        (served,) = client.get("/v1/models").json()["models"]
        assert served["method"] == "lstm" and served["kind"] == "lstm" and served["max_length"] == 128


def test_multilabel_lstm(tmp_path):
    rng = np.random.default_rng(1)
    rows = []
    for _ in range(160):
        present = [a for a in ANIMALS[:3] if rng.random() < 0.4]
        words = list(rng.choice(FILLER, size=5)) + present
        rng.shuffle(words)
        rows.append((" ".join(words), "|".join(present)))
    path = tmp_path / "multi.csv"
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    result = train(_config(tmp_path, path, "multilabel", max_epochs=20))
    assert result.metrics["micro_f1"] >= 0.8
    predictor = Predictor.load(result.run_dir)
    assert "thresholds" in predictor.meta.extra
    assert predictor.labels == ["bird", "cat", "dog"]
    assert {"cat", "dog"} <= set(predictor.predict(["the cat my dog"])[0].labels)


def test_vocabulary_respects_min_freq_and_size():
    tokenizer = WordTokenizer.learn(["b b b a a c", "B d"], vocab_size=4, min_freq=2)
    assert tokenizer.vocabulary == [PAD, UNK, "b", "a"]
    assert tokenizer.ids("A b zebra") == [3, 2, 1]
    assert tokenizer.ids("") == [1] and tokenizer.ids("a b a b", max_length=3) == [3, 2, 3]
    assert tokenizer(["don't stop!"], return_offsets_mapping=True)["offset_mapping"] == [[(0, 5), (6, 10), (10, 11)]]


@pytest.mark.parametrize(
    ("setting", "value"),
    [("train.lstm.hidden_size", "0"), ("train.lstm.dropout", "1.5"), ("train.lstm.pooling", "attention"), ("train.lstm.layers", "9")],
)
def test_bad_lstm_settings_name_the_setting(setting, value):
    with pytest.raises(ConfigError, match=setting.replace(".", r"\.")):
        load_config(None, [f"{setting}={value}"], base={"data": {"train": "x.csv"}, "train": {"method": "lstm"}})


def test_method_is_known_to_config_cli_and_tasks(monkeypatch, capsys):
    config = load_config(None, [], base={"data": {"train": "x.csv"}, "train": {"method": "lstm"}})
    assert config.train.method == "lstm" and config.train.learning_rate == pytest.approx(2e-3)
    with pytest.raises(ConfigError, match="lstm"):  # the message lists the methods
        load_config(None, ["train.method=xgboost"], base={"data": {"train": "x.csv"}})
    from tuneforge.tasks import get_task

    assert "lstm" in get_task("classify").methods and "lstm" in get_task("multilabel").methods
    assert not get_task("classify").needs_pretrained(config)
    with pytest.raises(ConfigError, match="supports full, lora"):
        from tuneforge.tasks import resolve_task

        resolve_task(load_config(None, [], base={"task": "entities", "data": {"train": "x.csv"}, "train": {"method": "lstm"}}))
    code, out, _ = run_cli(monkeypatch, capsys, "demo", "--help")
    assert code == 0 and "lstm" in out
