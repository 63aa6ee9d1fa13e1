"""The HTML report: one self-contained page per run (nothing fetched from anywhere), and runs side by side."""

from __future__ import annotations

import re

import yaml

from tuneforge.config import load_config
from tuneforge.engine.run import train

from conftest import DATA, run_cli, write_config


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


def _noisy(tmp_path) -> str:
    """The review data with every fourth label rotated, so a model trained on it makes confident mistakes."""
    import csv

    with (DATA / "reviews_train.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    order = ["positive", "negative", "neutral"]
    for i, row in enumerate(rows):
        if i % 4 == 0:
            row["sentiment"] = order[(order.index(row["sentiment"]) + 1) % 3]
    path = tmp_path / "noisy.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def _noisy_run(tmp_path, name, model=None, **train_settings):
    config = yaml.safe_load(write_config(tmp_path / name, model, **train_settings).read_text(encoding="utf-8"))
    config["data"]["train"] = _noisy(tmp_path)
    config["output"]["name"] = name
    path = tmp_path / name / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return train(load_config(path))


def test_the_worst_mistakes_are_explained_inline(tmp_path):
    result = _noisy_run(tmp_path, "why", method="tfidf")
    page = (result.run_dir / "report.html").read_text(encoding="utf-8")
    assert ">Why it was wrong<" in page and "by exact linear contributions" in page
    marks = re.findall(r'<mark style="background:rgba\(230,90,40,(0\.\d\d)\)" title="\+[0-9.]+">[^<]+</mark>', page)
    assert marks and all(0.15 <= float(alpha) <= 0.9 for alpha in marks)
    assert re.search(r"in \d+\.\d\d s \(model loading included\)", page)  # the time spent is on the page
    assert "<script" not in page and not re.search(r"""(src|href)=["'](?!data:|#)""", page)  # still self-contained


def test_transformer_mistakes_use_integrated_gradients_then_lime(tmp_path, tiny_bert, monkeypatch):
    from tuneforge.analysis import report_explain
    from tuneforge.analysis.report import build_report

    run_dir = _noisy_run(tmp_path, "bert", tiny_bert, method="full", epochs=1).run_dir
    assert "by integrated gradients (16 steps)" in build_report([run_dir]) and "<mark" in build_report([run_dir])
    monkeypatch.setattr(report_explain, "_installed", lambda package: package == "lime")
    page = build_report([run_dir])
    assert "by LIME (200 samples)" in page and "<mark" in page
    monkeypatch.setattr(report_explain, "_installed", lambda package: False)
    page = build_report([run_dir])
    # a full fine-tune that loses to its probe ships the probe: a head model, explained the same way
    assert re.search(
        r"not explained: a (transformer|head) model needs captum or lime \(pip install &#x27;tuneforge\[explain\]&#x27;\)", page
    )
    assert "<mark" not in page and ">Most confident mistakes<" in page and ">Results<" in page  # the rest still renders
    assert "<mark" not in build_report([run_dir], explained=0) and "Why it was wrong" not in build_report([run_dir], explained=0)


def test_explaining_stops_at_the_time_budget(tmp_path):
    import csv

    from tuneforge.analysis.report_explain import explained_errors

    result = _noisy_run(tmp_path, "budget", method="tfidf")
    with (result.run_dir / "eval" / "errors.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    part = explained_errors(result.run_dir, rows, limit=5, budget_s=0.0)
    assert "0 of the mistakes above" in part and "stopped at the 0 s budget" in part and "<mark" not in part
