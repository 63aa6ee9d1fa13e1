"""Data lineage: keyed row hashes per run, which runs saw a row, retraining without rows, pruning old runs."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from tuneforge.config import load_config
from tuneforge.engine.forget import forget
from tuneforge.engine.run import train
from tuneforge.errors import ConfigError, DataError
from tuneforge.lineage import lineage_key, matches
from tuneforge.rundir import RunDir, prune_runs

from conftest import DATA, run_cli


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEFORGE_CACHE", str(tmp_path / "cache"))


def _run(tmp_path, **data):
    config = {
        "data": {"train": str(DATA / "reviews_train.csv"), "text_column": "review", "label_column": "sentiment", **data},
        "train": {"method": "tfidf"},
        "output": {"dir": str(tmp_path / "runs")},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    return train(load_config(path)).run_dir


def test_runs_keep_hashes_never_rows_and_find_what_they_saw(tmp_path):
    run_dir = _run(tmp_path)
    lineage = json.loads((run_dir / "lineage.json").read_text())
    source = pd.read_csv(DATA / "reviews_train.csv")
    first = source["review"].iloc[0]
    assert first not in (run_dir / "lineage.json").read_text()
    assert lineage["sources"][str(DATA / "reviews_train.csv")] and set(lineage["rows"]) == {"train", "validation", "test"}
    assert (tmp_path / "cache" / "lineage.key").stat().st_mode & 0o777 == 0o600
    run = RunDir(run_dir)
    found = matches(run, pd.DataFrame({"text": ["  " + first + "  "]}))  # shaped like training text first
    assert sum(found.values()) == 1
    assert sum(matches(run, pd.DataFrame({"text": ["never seen anywhere"]})).values()) == 0


def test_forget_retrains_without_the_rows_and_supersedes_the_old_run(tmp_path):
    run_dir = _run(tmp_path)
    old = RunDir(run_dir)
    gone = old.splits()["train"]["text"].iloc[:3].tolist()
    result, removed = forget(run_dir, pd.DataFrame({"text": gone}))
    assert removed["train"] == 3 and sum(removed.values()) == 3
    new = RunDir(result.run_dir)
    assert not set(gone) & set(new.splits()["train"]["text"])
    assert len(new.splits()["train"]) == len(old.splits()["train"]) - 3
    assert len(new.splits()["test"]) == len(old.splits()["test"])  # same split assignment otherwise
    assert old.info()["superseded_by"] == str(new.path) and new.info()["forgets"]["run"] == str(old.path)
    assert sum(matches(new, pd.DataFrame({"text": gone})).values()) == 0
    assert not [p for p in (tmp_path / "runs").iterdir() if p.name.startswith(".forget")]  # the staging folder is gone
    with pytest.raises(DataError, match="nothing to forget"):
        forget(result.run_dir, pd.DataFrame({"text": gone}))


def test_cli_trained_on_and_prune(tmp_path, monkeypatch, capsys):
    run_dir = _run(tmp_path)
    text = RunDir(run_dir).splits()["test"]["text"].iloc[0]
    code, out, err = run_cli(monkeypatch, capsys, "runs", "--dir", tmp_path / "runs", "--trained-on", text)
    assert run_dir.name in out and "saw 1 test" in out
    code, out, _ = run_cli(monkeypatch, capsys, "runs", "--dir", tmp_path / "runs", "--trained-on", "a text nobody wrote")
    assert run_dir.name not in out
    assert prune_runs(tmp_path / "runs", older_than_days=1) == []  # just made
    RunDir(run_dir).update(started="2020-01-01T00:00:00+00:00")
    assert prune_runs(tmp_path / "runs", older_than_days=30) == [run_dir] and not run_dir.exists()


def test_the_key_is_made_once(tmp_path):
    assert lineage_key() == lineage_key() and len(lineage_key()) == 32


def test_runs_past_their_own_retention_are_pruned_on_request(tmp_path, monkeypatch, capsys):
    with pytest.raises(ConfigError, match="output.retention"):
        load_config(None, ["output.retention=soon"], base={"data": {"train": "x.csv"}})
    kept = _run(tmp_path)  # no retention: stays until deleted by name or by age
    short = _run_with(tmp_path, retention="2d")
    for run in (kept, short):
        RunDir(run).update(started="2026-01-01T00:00:00+00:00")
    young = _run_with(tmp_path, retention="30d")  # just made
    code, out, err = run_cli(monkeypatch, capsys, "runs", "--dir", tmp_path / "runs", "--prune")
    assert code == 0 and f"deleted {short}" in out
    assert not short.exists() and kept.exists() and young.exists()
    code, out, err = run_cli(monkeypatch, capsys, "runs", "--dir", tmp_path / "runs", "--prune")
    assert "nothing to delete" in err


def _run_with(tmp_path, **output):
    config = {
        "data": {"train": str(DATA / "reviews_train.csv"), "text_column": "review", "label_column": "sentiment"},
        "train": {"method": "tfidf"},
        "output": {"dir": str(tmp_path / "runs"), **output},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    return train(load_config(path)).run_dir
