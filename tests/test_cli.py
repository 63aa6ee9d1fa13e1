"""The CLI as a user meets it: exit codes, messages on stderr, run directory printed last."""

import json

import pandas as pd
import pytest

from conftest import DATA, run_cli, write_config


@pytest.fixture(scope="module")
def tfidf_run(tmp_path_factory):
    from tuneforge.config import load_config
    from tuneforge.engine.run import train

    folder = tmp_path_factory.mktemp("cli")
    return train(load_config(write_config(folder, None, method="tfidf"))).run_dir


def test_train_prints_metrics_and_run_dir_last(monkeypatch, capsys, tmp_path, tiny_bert):
    config = write_config(tmp_path, tiny_bert, method="head")
    code, out, err = run_cli(monkeypatch, capsys, "train", config, "--set", "train.head.c_grid=[1.0]")
    assert code == 0, err
    last = out.strip().splitlines()[-1]
    assert last.startswith(str(tmp_path / "runs")) and "macro_f1" in out
    assert (tmp_path / "runs").joinpath(last.rsplit("/", 1)[-1], "model", "tuneforge.json").is_file()
    code, out, _ = run_cli(monkeypatch, capsys, "runs", "--dir", tmp_path / "runs")
    assert code == 0 and "head" in out and "complete" in out


def test_config_error_exits_2_naming_the_setting(monkeypatch, capsys, tmp_path):
    config = write_config(tmp_path, None, method="tfidf")
    code, out, err = run_cli(monkeypatch, capsys, "train", config, "--set", "train.method=xgboost")
    assert code == 2 and "train.method" in err and "xgboost" in err and out == ""


def test_data_error_exits_2_naming_file_and_line(monkeypatch, capsys, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("review,sentiment\ngood,positive\n,negative\n")
    config = write_config(tmp_path, None, method="tfidf")
    code, _, err = run_cli(monkeypatch, capsys, "train", config, "--set", f"data.train={bad}")
    assert code == 2 and f"{bad}:3" in err and "'review' is empty" in err


def test_usage_errors_exit_2(monkeypatch, capsys, tfidf_run):
    assert run_cli(monkeypatch, capsys, "train")[0] == 2
    assert run_cli(monkeypatch, capsys, "predict", tfidf_run)[0] == 2
    assert run_cli(monkeypatch, capsys, "predict", tfidf_run, "--input", DATA / "reviews_test.csv")[0] == 2
    assert run_cli(monkeypatch, capsys, "no-such-command")[0] == 2
    code, _, err = run_cli(monkeypatch, capsys, "predict", tfidf_run, "--long-texts", "summarize", "some text")
    assert code == 2 and "long_texts must be one of truncate, chunk" in err


def test_predict_texts_as_table_and_json(monkeypatch, capsys, tfidf_run):
    code, out, _ = run_cli(
        monkeypatch, capsys, "predict", tfidf_run, "The phone was great and wonderful.", "The lamp was awful and broken."
    )
    assert code == 0 and "positive" in out and "negative" in out
    code, out, _ = run_cli(monkeypatch, capsys, "predict", tfidf_run, "--json", "The phone was great and wonderful.")
    record = json.loads(out.strip())
    assert record["label"] == "positive" and set(record["probabilities"]) == {"negative", "neutral", "positive"}


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_predict_file_to_file_streams_and_keeps_columns(monkeypatch, capsys, tmp_path, tfidf_run, suffix):
    frame = pd.read_csv(DATA / "reviews_test.csv")
    frame = pd.concat([frame] * 5, ignore_index=True)  # 75 rows in several chunks
    src = tmp_path / f"in{suffix}"
    {
        ".csv": lambda: frame.to_csv(src, index=False),
        ".jsonl": lambda: frame.to_json(src, orient="records", lines=True),
        ".parquet": lambda: frame.to_parquet(src),
    }[suffix]()
    dst = tmp_path / f"out{suffix}"
    code, out, err = run_cli(monkeypatch, capsys, "predict", tfidf_run, "--input", src, "--output", dst, "--text-column", "review")
    assert code == 0, err
    scored = {".csv": pd.read_csv, ".jsonl": lambda p: pd.read_json(p, lines=True), ".parquet": pd.read_parquet}[suffix](dst)
    assert len(scored) == 75
    assert list(scored.columns[:2]) == ["review", "sentiment"]
    assert {"label", "score", "prob_negative", "prob_neutral", "prob_positive"} <= set(scored.columns)
    assert (scored["label"] == scored["sentiment"]).mean() >= 0.8


def test_predict_file_missing_column_exits_2_and_writes_nothing(monkeypatch, capsys, tmp_path, tfidf_run):
    dst = tmp_path / "out.csv"
    code, _, err = run_cli(monkeypatch, capsys, "predict", tfidf_run, "--input", DATA / "reviews_test.csv", "--output", dst)
    assert code == 2 and "column 'text' not found" in err and "--text-column" in err
    assert not dst.exists() and list(tmp_path.iterdir()) == []


def test_evaluate_on_demand_writes_its_own_folder(monkeypatch, capsys, tfidf_run):
    code, out, err = run_cli(monkeypatch, capsys, "evaluate", tfidf_run, "--data", DATA / "reviews_validation.jsonl")
    assert code == 0, err
    metrics = json.loads((tfidf_run / "eval" / "reviews_validation" / "metrics.json").read_text())
    assert metrics["n"] == 15 and "accuracy" in metrics and "macro_f1" in metrics
    assert (tfidf_run / "eval" / "metrics.json").is_file()  # the run's own evaluation is kept


def test_evaluate_with_unseen_label_exits_2(monkeypatch, capsys, tmp_path, tfidf_run):
    bad = tmp_path / "bad.csv"
    bad.write_text("review,sentiment\nfine,positive\nhmm,sarcastic\n")
    code, _, err = run_cli(monkeypatch, capsys, "evaluate", tfidf_run, "--data", bad)
    assert code == 2 and f"{bad}:3" in err and "sarcastic" in err


def test_predict_on_missing_run_exits_2(monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(monkeypatch, capsys, "predict", tmp_path / "nope", "hello")
    assert code == 2 and "not found" in err


def test_unexpected_failure_exits_1_with_the_reason(monkeypatch, capsys, tmp_path):
    def broken(*args, **kwargs):
        raise RuntimeError("disk exploded")

    monkeypatch.setattr("tuneforge.engine.run.train", broken)
    code, _, err = run_cli(monkeypatch, capsys, "train", write_config(tmp_path, None, method="tfidf"))
    assert code == 1 and "disk exploded" in err and "Traceback" in err
