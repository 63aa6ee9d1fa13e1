"""Every training method end to end on tiny data: run directory, saved model, reload parity."""

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from tuneforge.config import load_config
from tuneforge.engine.run import train
from tuneforge.errors import RunError
from tuneforge.predict.predictor import Predictor
from tuneforge.rundir import RunDir

from conftest import write_config

METHODS = ["full", "lora", "head", "tfidf"]


@pytest.fixture(scope="module")
def trained(tiny_bert, tmp_path_factory):
    """One finished run per method, shared by the checks below."""
    runs = {}
    for method in METHODS:
        folder = tmp_path_factory.mktemp(method)
        extra = {"lora": {"r": 4, "alpha": 8, "dropout": 0.0}} if method == "lora" else {}
        runs[method] = train(load_config(write_config(folder, tiny_bert, method=method, **extra)))
    return runs


@pytest.mark.parametrize("method", METHODS)
def test_run_directory_is_complete(trained, method):
    run_dir = trained[method].run_dir
    for name in (
        "config.yaml",
        "data_report.json",
        "metrics.jsonl",
        "cost.json",
        "model_card.md",
        "run.json",
        "splits/train.jsonl",
        "splits/validation.jsonl",
        "splits/test.jsonl",
    ):
        assert (run_dir / name).is_file(), name
    for name in ("metrics.json", "confusion.png", "reliability.png", "errors.csv"):
        assert (run_dir / "eval" / name).is_file(), name
    assert (run_dir / "eval" / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((run_dir / "eval" / "metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["n"] == 6
    assert 0 <= metrics["accuracy"] <= 1 and 0 <= metrics["macro_f1"] <= 1
    assert set(metrics["per_class"]) == {"negative", "neutral", "positive"}
    assert np.array(metrics["confusion_matrix"]).sum() == 6
    info = RunDir(run_dir).info()
    assert info["status"] == "complete" and info["method"] == method
    cost = json.loads((run_dir / "cost.json").read_text())
    assert cost["wall_seconds"] > 0 and cost["peak_rss_mb"] > 0 and cost["estimated_cost_usd"] >= 0
    resolved = load_config(run_dir / "config.yaml")
    assert resolved.train.method == method and resolved.data.text_column == "review"


@pytest.mark.parametrize("method", METHODS)
def test_weights_are_safetensors_only(trained, method):
    model_dir = trained[method].run_dir / "model"
    names = {p.name for p in model_dir.iterdir()}
    assert any(n.endswith(".safetensors") for n in names)
    assert not any(n.endswith((".bin", ".pt", ".pkl", ".pickle", ".joblib")) for n in names)


@pytest.mark.parametrize("method", METHODS)
def test_reloaded_model_reproduces_training_validation_score(trained, method):
    """The saved model, loaded cold, must score validation exactly as training measured it."""
    result = trained[method]
    info = RunDir(result.run_dir).info()["train"]
    predictor = Predictor.load(result.run_dir)
    validation = [json.loads(line) for line in (result.run_dir / "splits" / "validation.jsonl").read_text().splitlines()]
    predicted = [p.label for p in predictor.predict([row["text"] for row in validation])]
    truth = [row["label"] for row in validation]
    from sklearn.metrics import f1_score

    assert f1_score(truth, predicted, average="macro") == pytest.approx(info["best_validation_macro_f1"], abs=1e-6)


def test_predictions_have_labels_and_probabilities(trained):
    predictor = Predictor.load(trained["full"].run_dir)
    out = predictor.predict(["The phone was great and wonderful.", "short", "The lamp was broken and awful."])
    assert len(out) == 3
    for p in out:
        assert p.label in predictor.labels
        assert sum(p.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert p.score == max(p.probabilities.values())
    # batching and length sorting must not change results
    texts = [f"The chair was {'great ' * k}and fine." for k in range(1, 12)]
    one_by_one = np.vstack([predictor.predict_proba([t]) for t in texts])
    predictor.batch_size = 4
    np.testing.assert_allclose(predictor.predict_proba(texts), one_by_one, atol=1e-5)
    with pytest.raises(TypeError, match=r"texts\[1\] must be a string"):
        predictor.predict(["ok", 3])


def test_tfidf_baseline_learns_the_tiny_task(trained):
    assert trained["tfidf"].metrics["accuracy"] >= 0.8


def test_lora_changes_only_adapted_matrices(trained, tiny_bert):
    base = load_file(str(tiny_bert / "model.safetensors"))
    tuned = load_file(str(trained["lora"].run_dir / "model" / "model.safetensors"))
    key_name = next(k for k in base if k.endswith("layer.0.attention.self.key.weight"))
    query_name = next(k for k in base if k.endswith("layer.0.attention.self.query.weight"))
    tuned_key = next(v for k, v in tuned.items() if k.endswith("layer.0.attention.self.key.weight"))
    tuned_query = next(v for k, v in tuned.items() if k.endswith("layer.0.attention.self.query.weight"))
    np.testing.assert_array_equal(tuned_key, base[key_name])
    assert not np.allclose(tuned_query, base[query_name])
    assert not any("lora" in k for k in tuned)  # merged: serving needs no peft


def test_head_keeps_the_encoder_frozen(trained, tiny_bert):
    base = load_file(str(tiny_bert / "model.safetensors"))
    saved = load_file(str(trained["head"].run_dir / "model" / "model.safetensors"))
    for name, value in base.items():
        match = next(v for k, v in saved.items() if k.split(".", 1)[-1] == name.split(".", 1)[-1] or k == name)
        np.testing.assert_array_equal(match, value)
    head = load_file(str(trained["head"].run_dir / "model" / "head.safetensors"))
    assert head["weight"].shape == (3, 32)


def test_labels_and_text_cleaning_travel_with_the_model(trained):
    predictor = Predictor.load(trained["tfidf"].run_dir / "model")
    assert predictor.labels == ["negative", "neutral", "positive"]
    assert predictor.predict_proba(["<b>The phone was great</b>"]).tolist() == predictor.predict_proba(["The phone was great"]).tolist()


def test_predictor_errors_name_the_problem(tmp_path):
    with pytest.raises(RunError, match="not found"):
        Predictor.load(tmp_path / "nope")
    (tmp_path / "half").mkdir()
    with pytest.raises(RunError, match="no trained model"):
        Predictor.load(tmp_path / "half")


def test_binary_task_uses_softmax_of_one_vs_rest_row(tmp_path):
    import pandas as pd

    rows = [(f"good item number {i}", "pos") for i in range(15)] + [(f"bad item number {i}", "neg") for i in range(15)]
    path = tmp_path / "binary.csv"
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    config = load_config(None, ["train.method=tfidf", f"output.dir={tmp_path / 'runs'}"], base={"data": {"train": str(path)}})
    result = train(config)
    predictor = Predictor.load(result.run_dir)
    assert [p.label for p in predictor.predict(["good item", "bad item"])] == ["pos", "neg"]
