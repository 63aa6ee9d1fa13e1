"""Data larger than memory (`data.streaming`): chunked cleaning, hash dedup and splits, incremental tfidf / head."""

from __future__ import annotations

import csv
import json
import random

import numpy as np
import pandas as pd
import pytest
import yaml

from tuneforge.config import load_config
from tuneforge.data.prepare import prepare_data
from tuneforge.data.rowhash import SeenTexts, assign_splits, text_hashes
from tuneforge.data.shuffle import ShuffleBuffer
from tuneforge.data.stream import prepare_streaming
from tuneforge.engine.run import train
from tuneforge.errors import ConfigError, DataError
from tuneforge.lineage import lineage_key, matches
from tuneforge.predict.predictor import Predictor
from tuneforge.rundir import RunDir
from tuneforge.tasks import get_task

POSITIVE = ["good", "great", "excellent", "lovely", "superb", "fine"]
NEGATIVE = ["bad", "awful", "terrible", "poor", "horrid", "dire"]
THINGS = ["phone", "blender", "chair", "lamp", "desk", "kettle"]


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEFORGE_CACHE", str(tmp_path / "cache"))


def toy_rows(n: int, seed: int = 0) -> list[dict]:
    """A separable two-label problem with planted exact duplicates and conflicting labels."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = rng.choice(["neg", "pos"])
        words = POSITIVE if label == "pos" else NEGATIVE
        rows.append({"id": i, "text": f"the {rng.choice(THINGS)} {i} is {rng.choice(words)}", "label": label})
    # the same text twice with one label (a duplicate), then under the other label twice
    # (a conflict, then a duplicate of that conflict: the rule clean_frame applies in memory)
    rows += [
        {"id": n, "text": rows[3]["text"], "label": rows[3]["label"]},
        {"id": n + 1, "text": rows[5]["text"], "label": "pos" if rows[5]["label"] == "neg" else "neg"},
        {"id": n + 2, "text": rows[5]["text"], "label": "pos" if rows[5]["label"] == "neg" else "neg"},
        {"id": n + 3, "text": "  ", "label": "pos"},
    ]
    return rows


def write_rows(path, rows: list[dict]) -> None:
    if path.suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=["id", "text", "label"])
            writer.writeheader()
            writer.writerows(rows)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    else:
        pd.DataFrame(rows).to_parquet(path)


def data_config(path, **data):
    from tuneforge.config import DataConfig

    return DataConfig(train=str(path), streaming=True, chunk_rows=7, empty_text="drop", **data)


def write_run_config(tmp_path, data_path, method="tfidf", model=None, **data) -> object:
    config = {
        "data": {"train": str(data_path), "streaming": True, "chunk_rows": 50, "shuffle_buffer": 32, "empty_text": "drop", **data},
        "train": {"method": method, "epochs": 3, "seed": 3, "max_length": 16, "head": {"c_grid": [1.0, 10.0]}},
        "output": {"dir": str(tmp_path / "runs")},
    }
    if model is not None:
        config["model"] = {"name": str(model)}
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return load_config(path)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_streamed_pass_removes_what_the_in_memory_cleaning_removes(tmp_path, suffix):
    path = tmp_path / f"data{suffix}"
    write_rows(path, toy_rows(300))
    task = get_task("classify")
    streamed = prepare_streaming(data_config(path), seed=5, task=task, method="tfidf", staging_parent=tmp_path / "runs")
    in_memory = prepare_data(data_config(path).model_copy(update={"streaming": False}), seed=5, task=task)
    got, expected = streamed.report["files"]["train"], in_memory.report["files"]["train"]
    assert got["removed"] == expected["removed"] == {"empty_row": 0, "empty_text": 1, "duplicate": 2, "conflicting_label": 1}
    assert got["rows_read"] == expected["rows_read"] == 304 and got["rows_kept"] == expected["rows_kept"] == 300
    assert got["examples"]["duplicate"] == expected["examples"]["duplicate"]  # same rows named, by file and line
    sizes = {split: streamed.rows(split) for split in ("train", "validation", "test")}
    assert sum(sizes.values()) == 300
    kept_texts = []
    for split in sizes:
        frames = list(streamed.chunks(split))
        rows = pd.concat(frames, ignore_index=True)
        assert len(rows) == sizes[split] and list(rows.columns[:1]) == ["id"]  # every column kept, in file order
        assert sum(streamed.report["splits"][split]["label_counts"].values()) == sizes[split]
        # each row's split is the pure function of (seed, row hash)
        codes = assign_splits(text_hashes(rows["text"].tolist(), lineage_key()), 5, test=0.1, validation=0.1)
        assert set(codes.tolist()) == {("train", "validation", "test").index(split)}
        kept_texts += rows["text"].tolist()
    assert sorted(kept_texts) == sorted(pd.concat(in_memory.splits().values())["text"])
    streamed.discard_staging()


def test_two_streamed_runs_write_identical_splits_and_a_searchable_lineage(tmp_path):
    path = tmp_path / "data.csv"
    write_rows(path, toy_rows(400))
    first = train(write_run_config(tmp_path / "a", path))
    second = train(write_run_config(tmp_path / "b", path))
    for split in ("train", "validation", "test"):
        assert (first.run_dir / "splits" / f"{split}.jsonl").read_bytes() == (second.run_dir / "splits" / f"{split}.jsonl").read_bytes()
    assert first.metrics["accuracy"] == second.metrics["accuracy"]
    assert not [p for p in (tmp_path / "a" / "runs").iterdir() if p.name.startswith(".")]  # no staging left behind
    test_rows = RunDir(first.run_dir).read_split("test")
    assert matches(RunDir(first.run_dir), test_rows.head(5)) == {"train": 0, "validation": 0, "test": 5}


def test_a_streamed_tfidf_run_learns_a_separable_problem_and_predicts(tmp_path):
    path = tmp_path / "data.jsonl"
    write_rows(path, toy_rows(600))
    result = train(write_run_config(tmp_path, path))
    assert result.metrics["accuracy"] == 1.0
    info = result.train_info["streaming"]
    assert 1 <= info["best_epoch"] <= info["epochs_run"] == 3
    assert info["shuffle_buffer_peak"] == 32  # the buffer filled and never grew past its size
    report = json.loads((result.run_dir / "data_report.json").read_text())
    assert report["streaming"]["chunk_rows"] == 50 and report["files"]["train"]["removed"]["duplicate"] == 2
    meta = json.loads((result.run_dir / "model" / "tuneforge.json").read_text())
    assert meta["kind"] == "tfidf" and meta["extra"]["vectorizer"] == "hashing"
    predictor = Predictor.load(result.run_dir)
    assert [p.label for p in predictor.predict(["the lamp is superb", "the desk is horrid"])] == ["pos", "neg"]
    from tuneforge.analysis.explain import explain

    words = {w.text: w.attribution for w in explain(predictor, "the lamp is superb", label="pos").words}
    assert words["superb"] > 0 and words["superb"] == max(words.values())


def test_a_bad_line_in_a_later_chunk_names_file_and_line(tmp_path):
    path = tmp_path / "data.csv"
    write_rows(path, toy_rows(100))
    lines = path.read_text().splitlines()
    lines.insert(60, '61,"a review, with", an unquoted comma,pos')  # line 61 of the file
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"{path}:61: 4 fields but the header has 3"):
        prepare_streaming(data_config(path), seed=1, task=get_task("classify"), method="tfidf", staging_parent=tmp_path / "runs")
    assert not list((tmp_path / "runs").iterdir())  # the staged split files went with the error
    jsonl = tmp_path / "data.jsonl"
    rows = toy_rows(40)
    rows[30]["label"] = None
    write_rows(jsonl, rows)
    with pytest.raises(DataError, match=rf"{jsonl}:31: column 'label' is empty"):
        prepare_streaming(data_config(jsonl), seed=1, task=get_task("classify"), method="tfidf", staging_parent=tmp_path / "runs")


def test_the_shuffle_buffer_never_holds_more_than_its_size():
    buffer = ShuffleBuffer(64)
    items = range(10_000)
    out = list(buffer.shuffle(iter(items), np.random.default_rng(0)))
    assert sorted(out) == list(items) and out != list(items)  # every item once, reordered
    assert buffer.peak == 64
    # a row moves at most as far forward as the buffer lets it: never more than `size` places early
    assert min(position - item for position, item in enumerate(out)) >= -64


def test_hash_splits_are_stratified_in_expectation():
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, size=60_000, dtype=np.uint64)
    labels = rng.choice(3, size=len(hashes), p=[0.7, 0.2, 0.1])
    codes = assign_splits(hashes, 11, test=0.1, validation=0.15)
    for label in range(3):
        mine = codes[labels == label]
        for split, f in ((1, 0.15), (2, 0.1)):
            n = len(mine)
            assert abs((mine == split).sum() - n * f) < 4 * np.sqrt(n * f * (1 - f))  # binomial spread, documented
    assert not np.array_equal(codes, assign_splits(hashes, 12, test=0.1, validation=0.15))  # the seed matters
    assert np.array_equal(codes, assign_splits(hashes, 11, test=0.1, validation=0.15))


def test_seen_texts_finds_every_added_hash_across_merged_runs():
    rng = np.random.default_rng(1)
    seen = SeenTexts()
    added = []
    for _ in range(37):  # many small chunks: runs merge into larger ones
        chunk = rng.integers(1, 2**63, size=100, dtype=np.uint64)
        seen.add(chunk, np.full(len(chunk), len(added) % 5, dtype=np.int32))
        added.append(chunk)
    assert len(seen) == 3700 and seen.nbytes == 3700 * 10
    assert (seen.lookup(added[4]) == 4).all() and (seen.lookup(added[36]) == 36 % 5).all()
    assert (seen.lookup(rng.integers(1, 2**63, size=50, dtype=np.uint64)) == -1).all()


def test_streaming_refuses_what_it_does_not_cover(tmp_path):
    path = tmp_path / "data.csv"
    write_rows(path, toy_rows(50))
    with pytest.raises(ConfigError, match="streaming covers methods tfidf, head"):
        train(write_run_config(tmp_path, path, method="full"))
    with pytest.raises(ConfigError, match="data.max_rows: not available with data.streaming"):
        train(write_run_config(tmp_path, path, max_rows=20))


def test_a_streamed_head_run_with_given_validation_file_predicts(tmp_path, tiny_bert):
    path, validation = tmp_path / "train.csv", tmp_path / "validation.parquet"
    rows = toy_rows(240)
    write_rows(path, rows[:200])
    write_rows(validation, [*rows[200:240], rows[0]])  # one text also in train
    result = train(write_run_config(tmp_path, path, method="head", model=tiny_bert, validation=str(validation)))
    report = json.loads((result.run_dir / "data_report.json").read_text())
    assert report["splits"]["validation"] == {
        "rows": 41,
        "origin": "file",
        "label_counts": report["splits"]["validation"]["label_counts"],
        "texts_also_in_train": 1,
    }
    assert "test" not in report["splits"] and result.metrics["split"] == "validation"
    assert not [p for p in result.run_dir.iterdir() if p.name.startswith(".features")]  # the spilled embeddings are gone
    meta = json.loads((result.run_dir / "model" / "tuneforge.json").read_text())
    assert meta["kind"] == "head" and meta["extra"]["streaming"] is True
    predictions = Predictor.load(result.run_dir).predict(["the lamp is superb"])
    assert predictions[0].label in ("neg", "pos") and 0 < predictions[0].score <= 1


def test_a_failed_streamed_run_resumes_from_its_split_files(tmp_path):
    import shutil

    path = tmp_path / "data.csv"
    write_rows(path, toy_rows(300))
    first = train(write_run_config(tmp_path, path))
    run = RunDir(first.run_dir)
    shutil.rmtree(run.model_dir)
    run.update(status="failed")
    resumed = train(None, resume=first.run_dir)
    assert resumed.resumed and run.info()["status"] == "complete"
    assert resumed.metrics["accuracy"] == first.metrics["accuracy"]  # same rows, same seed, same model
