"""End to end with the real packaged all-MiniLM-L6-v2 on real BBC News data (marked slow)."""

import json
import sys
from pathlib import Path

import pytest

from tuneforge.cli import main

pytestmark = pytest.mark.slow


def _cli(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["tuneforge", *map(str, args)])
    with pytest.raises(SystemExit) as info:
        main()
    out = capsys.readouterr()
    assert info.value.code == 0, out.err
    return Path(out.out.strip().splitlines()[-1])


def test_demo_head_on_real_model_and_data(monkeypatch, capsys, tmp_path):
    run_dir = _cli(
        monkeypatch,
        capsys,
        "demo",
        "--method",
        "head",
        "--output-dir",
        tmp_path,
        "--set",
        "data.max_rows=500",
        "--set",
        "train.max_length=128",
    )
    metrics = json.loads((run_dir / "eval" / "metrics.json").read_text())
    assert metrics["accuracy"] > 0.85, metrics["accuracy"]  # 5 topics; chance is ~0.23
    report = json.loads((run_dir / "data_report.json").read_text())
    assert report["files"]["train"]["rows_read"] == 2225 and report["files"]["train"]["removed"]["duplicate"] > 0


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """A small real full fine-tune (400 articles, 64 tokens, 2 epochs), shared by the tests below."""
    out = tmp_path_factory.mktemp("real")
    args = [
        "demo",
        "--method",
        "full",
        "--output-dir",
        out,
        "--set",
        "data.max_rows=400",
        "--set",
        "train.epochs=2",
        "--set",
        "train.max_length=64",
        "--set",
        "train.keep=fine-tuned",  # these tests compress and serve the fine-tuned transformer itself
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["tuneforge", *map(str, args)])
        with pytest.raises(SystemExit) as info:
            main()
    assert info.value.code == 0
    (run_dir,) = out.glob("demo-full-*")
    return run_dir


def test_full_fine_tune_on_real_model_learns_and_serves(full_run):
    run_dir = full_run
    metrics = json.loads((run_dir / "eval" / "metrics.json").read_text())
    assert metrics["macro_f1"] > 0.6, metrics  # from ~0.2 (chance) after ~40 steps on 2 cores
    info = json.loads((run_dir / "run.json").read_text())["train"]
    assert info["kept"] == "fine-tuned" and {"probe_validation_macro_f1", "tfidf_validation_macro_f1"} <= set(info)
    assert "Baselines on validation (macro_f1): frozen-encoder probe" in (run_dir / "model_card.md").read_text()
    from tuneforge import Predictor

    predictor = Predictor.load(run_dir)
    labels = [
        p.label
        for p in predictor.predict(
            [
                "The striker scored twice as United beat Chelsea in the cup final.",
                "Shares fell after the bank cut its profit forecast for the year.",
            ]
        )
    ]
    assert labels == ["sports", "business"]


def test_distilled_int8_student_of_real_model(full_run):
    from tuneforge.compress.run import compress_run
    from tuneforge.compress.settings import CompressSettings

    report = compress_run(full_run, methods=["distill", "int8"], settings=CompressSettings(epochs=2, latency_texts=20))
    rows = {r["variant"]: r for r in report["variants"]}
    assert rows["distill"]["layers"] == "3 of 6"
    assert rows["distill-int8"]["size_mb"] < 0.25 * rows["original"]["size_mb"]
    assert rows["distill-onnx"]["max_abs_logit_diff"] < 1e-3
    assert rows["distill-int8"]["agreement"] >= 0.8, rows["distill-int8"]
    assert rows["distill-int8"]["accuracy"] >= rows["original"]["accuracy"] - 0.1, rows
