"""The HTML report: one self-contained page per run (nothing fetched from anywhere), and runs side by side."""

from __future__ import annotations

import re

import yaml

from tuneforge.config import load_config
from tuneforge.engine.run import train

from conftest import DATA, run_cli


def _run(tmp_path, name):
    config = {
        "data": {"train": str(DATA / "reviews_train.csv"), "text_column": "review", "label_column": "sentiment"},
        "train": {"method": "tfidf"},
        "output": {"dir": str(tmp_path / "runs"), "name": name},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return train(load_config(path))


def test_every_run_gets_a_self_contained_report(tmp_path):
    result = _run(tmp_path, "a")
    page = (result.run_dir / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and 'name="viewport"' in page  # readable on a phone
    assert "<script" not in page and not re.search(r"""(src|href)=["'](?!data:|#)""", page)  # no network, no CDN
    assert page.count('src="data:image/png;base64,') >= 2  # confusion matrix, reliability diagram
    assert f"{result.metrics['accuracy']:.4f}" in page
    for heading in ("Results", "Data", "Plots", "Slices", "Cost", "Model card", "Config"):
        assert f">{heading}<" in page, heading


def test_two_runs_side_by_side(tmp_path, monkeypatch, capsys):
    first, second = _run(tmp_path, "a"), _run(tmp_path, "b")
    code, out, err = run_cli(monkeypatch, capsys, "report", first.run_dir, second.run_dir)
    assert code == 2 and "--output" in err
    target = tmp_path / "compare.html"
    code, out, _ = run_cli(monkeypatch, capsys, "report", first.run_dir, second.run_dir, "--output", target)
    page = target.read_text(encoding="utf-8")
    assert "Side by side" in page and first.run_dir.name in page and second.run_dir.name in page


def test_headline_scores_carry_bootstrap_intervals(tmp_path):
    import numpy as np

    from tuneforge.tasks.classify.metrics import bootstrap_intervals

    y = np.array([0, 1] * 106)
    pred = y.copy()
    pred[:7] = 1 - pred[:7]  # 205 of 212 right, like a BBC News test split
    low, high = bootstrap_intervals(y, pred, [0, 1])["accuracy"]
    assert low < 205 / 212 < high and high - low > 0.03  # a few articles either way are inside the noise
    result = _run(tmp_path, "ci")
    assert "95% bootstrap interval" in (result.run_dir / "report.html").read_text()
    assert "bootstrap interval" in (result.run_dir / "model_card.md").read_text()
