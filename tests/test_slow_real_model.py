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


def test_full_fine_tune_on_real_model_learns_and_serves(monkeypatch, capsys, tmp_path):
    run_dir = _cli(
        monkeypatch,
        capsys,
        "demo",
        "--method",
        "full",
        "--output-dir",
        tmp_path,
        "--set",
        "data.max_rows=400",
        "--set",
        "train.epochs=2",
        "--set",
        "train.max_length=64",
    )
    metrics = json.loads((run_dir / "eval" / "metrics.json").read_text())
    assert metrics["macro_f1"] > 0.6, metrics  # from ~0.2 (chance) after ~40 steps on 2 cores
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
