"""Compression on a tiny model: ONNX parity, int8 variants load and predict, trade-offs and errors."""

import json
import sys

import numpy as np
import pytest

from tuneforge.compress.run import compress_run, recommend
from tuneforge.compress.settings import CompressSettings
from tuneforge.compress.variants import CompressionError
from tuneforge.config import load_config
from tuneforge.engine.run import train
from tuneforge.errors import ConfigError, MissingDependencyError, RunError
from tuneforge.predict.predictor import Predictor

from conftest import write_config


@pytest.fixture(scope="module")
def full_run(tiny_bert, tmp_path_factory):
    return train(
        load_config(write_config(tmp_path_factory.mktemp("compress"), tiny_bert, method="full", epochs=3, keep="fine-tuned"))
    ).run_dir


@pytest.fixture(scope="module")
def report(full_run):
    return compress_run(full_run, methods=["onnx", "int8", "torch-int8"])


def test_every_variant_is_measured_and_one_is_recommended(full_run, report):
    names = [r["variant"] for r in report["variants"]]
    assert names == ["original", "onnx", "int8", "torch-int8"]
    for row in report["variants"]:
        assert row["size_mb"] > 0 and row["latency_p50_ms"] > 0 and row["latency_p95_ms"] >= row["latency_p50_ms"]
        assert row["throughput_texts_per_s"] > 0 and 0 <= row["accuracy"] <= 1 and 0 <= row["agreement"] <= 1
    onnx = report["variants"][1]
    assert onnx["max_abs_logit_diff"] < 1e-3 and onnx["parity_agreement"] == 1.0 and onnx["parity_texts"] > 0
    int8 = report["variants"][2]
    assert int8["size_mb"] < onnx["size_mb"]  # int8 weights are smaller on disk
    assert report["recommended"] in names
    saved = json.loads((full_run / "compress" / "tradeoffs.json").read_text())
    assert saved["recommended"] == report["recommended"]
    assert (full_run / "compress" / "tradeoffs.png").read_bytes()[:4] == b"\x89PNG"


def test_onnx_variant_matches_pytorch_on_new_texts(full_run, report):
    texts = ["The phone was great and wonderful.", "awful", "The lamp was okay and arrived in a package today." * 3]
    original = Predictor.load(full_run, variant="original").predict_proba(texts)
    onnx = Predictor.load(full_run, variant="onnx")
    assert onnx.backend.name == "onnxruntime"
    np.testing.assert_allclose(onnx.predict_proba(texts), original, atol=1e-4)
    for variant in ("int8", "torch-int8", "recommended", "auto"):
        probs = Predictor.load(full_run, variant=variant).predict_proba(texts)
        assert probs.shape == (3, 3)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_unknown_variant_lists_the_available_ones(full_run, report):
    with pytest.raises(RunError, match=r"no compressed variant 'fp4' \(available: original, int8, onnx, torch-int8\)"):
        Predictor.load(full_run, variant="fp4")


def test_recommendation_respects_the_accuracy_budget():
    rows = [
        {"variant": "original", "accuracy": 0.90, "throughput_texts_per_s": 10},
        {"variant": "onnx", "accuracy": 0.90, "throughput_texts_per_s": 15},
        {"variant": "int8", "accuracy": 0.893, "throughput_texts_per_s": 30},
    ]
    assert recommend(rows, 0.5) == "onnx"  # int8 loses 0.7 points
    assert recommend(rows, 1.0) == "int8"


def test_tfidf_runs_cannot_be_compressed(tmp_path):
    run = train(load_config(write_config(tmp_path, None, method="tfidf"))).run_dir
    with pytest.raises(CompressionError, match="compression works on full and lora runs; this is a 'tfidf' run"):
        compress_run(run, methods=["onnx"])


def test_run_without_model_and_bad_methods(tmp_path, full_run):
    with pytest.raises(RunError, match="not found"):
        compress_run(tmp_path / "nope", methods=["onnx"])
    with pytest.raises(ConfigError, match=r"unknown fp4; available: onnx, int8, torch-int8, distill, prune-heads, prune-magnitude, prune"):
        compress_run(full_run, methods=["fp4"])
    with pytest.raises(ConfigError, match="compress.student_layers=2: the teacher has 2 layers"):
        compress_run(full_run, methods=["distill"], settings=CompressSettings(student_layers=2))


def test_missing_onnxruntime_names_the_extra(full_run, report, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingDependencyError, match=r"tuneforge\[compress\]"):
        Predictor.load(full_run, variant="onnx")


def test_served_model_reports_the_variant_backend(full_run, report):
    from fastapi.testclient import TestClient

    from serve_helpers import make_app

    app, _ = make_app([full_run], variant="onnx")
    with TestClient(app) as client:
        model = client.get("/v1/models").json()["models"][0]
        assert model["backend"] == "onnxruntime" and model["variant"] == "onnx"
        assert client.post("/v1/classify", json={"texts": ["The phone was great."]}).status_code == 200
