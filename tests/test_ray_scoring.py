"""`predict --engine ray`: a local Ray, one predictor per actor, output files identical to the single-process path."""

from __future__ import annotations

import pandas as pd
import pytest

from tuneforge.config import load_config
from tuneforge.engine.run import train

from conftest import DATA, run_cli, write_config

ray = pytest.importorskip("ray", reason="pip install 'tuneforge[ray]'")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train(load_config(write_config(tmp_path_factory.mktemp("ray"), None, method="tfidf"))).run_dir


@pytest.fixture(scope="module")
def big_input(tmp_path_factory):
    """Enough rows for many chunks (chunk_rows=1024), with a missing text and a column named like a prediction."""
    frame = pd.read_csv(DATA / "reviews_test.csv")
    frame = pd.concat([frame] * (3000 // len(frame) + 1), ignore_index=True).head(3000)
    frame["id"] = range(len(frame))
    frame["label"] = "given"  # taken: the prediction column becomes pred_label
    frame.loc[7, "review"] = None
    folder = tmp_path_factory.mktemp("ray-in")
    frame.to_csv(folder / "in.csv", index=False)
    frame.to_json(folder / "in.jsonl", orient="records", lines=True)
    return folder


def test_ray_engine_writes_the_same_bytes_as_the_local_one(run_dir, big_input, tmp_path, monkeypatch, capsys):
    for source, target in (("in.csv", "out.csv"), ("in.jsonl", "out.parquet"), ("in.csv", "out.jsonl")):
        code, _, err = run_cli(
            monkeypatch, capsys, "predict", run_dir, "-i", big_input / source, "-o", tmp_path / f"local-{target}", "--text-column", "review"
        )
        assert code == 0, err
    code, _, err = run_cli(
        monkeypatch,
        capsys,
        *("predict", run_dir, "-i", big_input / "in.csv", "-o", tmp_path / "ray-out.csv", "--text-column", "review"),
        *("--engine", "ray", "--workers", "2"),
    )
    assert code == 0, err
    assert "on 2 Ray actor(s)" in err
    assert (tmp_path / "ray-out.csv").read_bytes() == (tmp_path / "local-out.csv").read_bytes()
    scored = pd.read_csv(tmp_path / "ray-out.csv")
    assert len(scored) == 3000 and scored["id"].tolist() == list(range(3000))  # every row, in input order
    assert {"label", "pred_label"} <= set(scored.columns)

    from tuneforge.predict.files import score_file
    from tuneforge.predict.ray_scoring import RayScoring

    scoring = RayScoring(run_dir, workers=2)  # one Ray for both formats: actors load the model once
    try:
        for source, target in (("in.jsonl", "out.parquet"), ("in.csv", "out.jsonl")):
            score_file(None, big_input / source, tmp_path / f"ray-{target}", text_column="review", scoring=scoring)
            assert (tmp_path / f"ray-{target}").read_bytes() == (tmp_path / f"local-{target}").read_bytes()
    finally:
        scoring.close()
    assert not ray.is_initialized()


def test_ray_engine_options_need_a_file_and_each_other(run_dir, monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "predict", run_dir, "some text", "--engine", "ray")
    assert code == 2 and "give --input and --output" in err
    code, _, err = run_cli(monkeypatch, capsys, "predict", run_dir, "-i", DATA / "reviews_test.csv", "-o", "x.csv", "--workers", "2")
    assert code == 2 and "go with --engine ray" in err
    code, _, err = run_cli(monkeypatch, capsys, "predict", run_dir, "some text", "--engine", "spark")
    assert code == 2 and "--engine must be local or ray" in err
