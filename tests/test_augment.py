"""data.augment: word edits (insert, replace, delete, swap) of the training split only, seeded and recorded."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tuneforge.config import load_config
from tuneforge.data.augment import NeighbourTable, augment_frame, augment_text, delete, insert, replace, swap
from tuneforge.engine.run import train
from tuneforge.errors import ConfigError
from tuneforge.rundir import RunDir
from tuneforge.tasks.augment import augment_training

DATA = Path(__file__).parent / "data"

# two clusters in a 2-d embedding space: praise words and blame words
WORDS = ["good", "great", "fine", "bad", "awful", "poor"]
VECTORS = np.array([[1.0, 0.0], [0.95, 0.1], [0.9, 0.2], [0.0, 1.0], [0.1, 0.95], [0.2, 0.9]])


@pytest.fixture
def table() -> NeighbourTable:
    return NeighbourTable(words=WORDS, vectors=VECTORS, k=2)


def test_neighbours_are_the_nearest_words_by_cosine_excluding_the_word_itself(table):
    assert table.neighbours("good") == ("great", "fine")
    assert table.neighbours("awful") == ("bad", "poor")
    assert table.neighbours("Good") == ("great", "fine")  # lookups fall back to lower case
    assert table.neighbours("sofa") == ()


def test_replace_swaps_words_for_neighbours_keeping_case_and_punctuation(table):
    tokens = ["Good!"]
    out = replace(tokens, 0.5, np.random.default_rng(0), table)
    assert out in (["Great!"], ["Fine!"])
    out = replace(["the", "food", "was", "good", "and", "the", "service", "was", "great"], 0.1, np.random.default_rng(1), table)
    changed = [(a, b) for a, b in zip(["the", "food", "was", "good", "and", "the", "service", "was", "great"], out) if a != b]
    assert len(changed) == 1 and changed[0][1] in table.neighbours(changed[0][0])


def test_insert_adds_a_neighbour_of_a_word_of_the_same_text(table):
    tokens = ["the", "food", "was", "bad"]
    out = insert(tokens, 0.1, np.random.default_rng(0), table)
    assert len(out) == 5
    added = Counter(out) - Counter(tokens)
    assert list(added) and set(added) <= set(table.neighbours("bad"))
    assert insert(["nothing", "known", "here"], 0.5, np.random.default_rng(0), table) == ["nothing", "known", "here"]


def test_delete_drops_words_in_order_and_keeps_at_least_one(table):
    tokens = [f"w{i}" for i in range(40)]
    out = delete(tokens, 0.3, np.random.default_rng(0))
    assert 0 < len(out) < 40 and out == [t for t in tokens if t in set(out)]
    assert len(delete(["only"], 0.5, np.random.default_rng(0))) == 1


def test_swap_keeps_the_words_and_changes_the_order(table):
    tokens = [f"w{i}" for i in range(10)]
    out = swap(tokens, 0.2, np.random.default_rng(0))
    assert sorted(out) == sorted(tokens) and out != tokens


def frame() -> pd.DataFrame:
    texts = ["the food was good and fresh", "awful service and bad coffee", "a great place, fine wine", "poor value for money"]
    return pd.DataFrame({"text": texts, "label": ["pos", "neg", "pos", "neg"], "source": [f"f.csv:{i}" for i in range(4)]})


def test_augmentation_is_seeded_per_text_and_copies_labels(table):
    settings = {"operations": ["insert", "replace", "delete", "swap"], "probability": 0.2, "copies": 3, "table": table}
    first, counts = augment_frame(frame(), seed=7, **settings)
    again, _ = augment_frame(frame(), seed=7, **settings)
    other, _ = augment_frame(frame(), seed=8, **settings)
    pd.testing.assert_frame_equal(first, again)
    assert not first["text"].equals(other["text"])
    assert sum(counts.values()) == len(first) > 0
    originals = dict(zip(frame()["source"], frame()["label"]))
    assert all(originals[s] == label for s, label in zip(first["source"], first["label"]))
    assert not set(first["text"]) & set(frame()["text"])  # a copy equal to its original is not added
    # a row's copies do not depend on the other rows (a retrain without some rows keeps the rest)
    alone = augment_text(frame()["text"][2], operations=settings["operations"], probability=0.2, copies=3, seed=7, table=table)
    assert [t for _, t in alone] == first.loc[first["source"] == "f.csv:2", "text"].tolist()


def test_only_delete_and_swap_need_no_neighbour_table():
    added, counts = augment_frame(frame(), operations=["delete", "swap"], probability=0.3, copies=1, seed=0)
    assert set(counts) == {"delete", "swap"} and len(added) >= 3
    with pytest.raises(ValueError, match="insert and replace need a NeighbourTable"):
        augment_frame(frame(), operations=["replace"], probability=0.3, copies=1, seed=0)


def test_whole_words_leave_out_pieces_specials_and_single_letters(tmp_path):
    from transformers import BertTokenizerFast

    from tuneforge.models.neighbours import whole_words

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused0]", "good", "##ness", "a", "great", "42"]) + "\n")
    tokenizer = BertTokenizerFast(vocab=str(vocab), do_lower_case=True)
    assert whole_words(tokenizer) == [("good", 6), ("great", 9)]


def test_config_errors_name_the_setting(tmp_path):
    def base():  # load_config writes overrides into the dict it is given
        return {"data": {"train": str(DATA / "reviews_train.csv"), "text_column": "review", "label_column": "sentiment"}}

    with pytest.raises(ConfigError, match=r"data.augment.operations.0"):
        load_config(None, ["data.augment.operations=[shuffle]"], base=base())
    with pytest.raises(ConfigError, match=r"data.augment.operations.*swap more than once"):
        load_config(None, ["data.augment.operations=[swap, swap]"], base=base())
    with pytest.raises(ConfigError, match=r"data.augment.probability"):
        load_config(None, ["data.augment.probability=0.9"], base=base())
    with pytest.raises(ConfigError, match=r"data.augment.copies"):
        load_config(None, ["data.augment.copies=0"], base=base())
    assert load_config(None, [], base=base()).data.augment is None  # off by default
    spans = tmp_path / "spans.jsonl"
    spans.write_text(json.dumps({"text": "Sales rose 5%", "entities": [{"start": 11, "end": 13, "label": "PERCENT"}]}) + "\n")
    config = {"task": "entities", "data": {"train": str(spans), "label_column": "entities", "augment": {}}, "train": {"method": "full"}}
    with pytest.raises(ConfigError, match="data.augment: task entities cannot be augmented: its labels are character spans"):
        train(load_config(None, [], base=config))


def reviews_config(tmp_path, tiny_bert, **augment) -> dict:
    return {
        "data": {"train": str(DATA / "reviews_train.csv"), "text_column": "review", "label_column": "sentiment", "augment": augment},
        "model": {"name": str(tiny_bert)},
        "train": {"method": "tfidf", "seed": 3},
        "output": {"dir": str(tmp_path / "runs")},
    }


def test_only_the_training_split_grows(tmp_path, tiny_bert):
    from tuneforge.tasks import resolve_task

    config = load_config(None, [], base=reviews_config(tmp_path, tiny_bert, copies=2))
    task = resolve_task(config)
    plain = task.prepare(config, seed=3)
    data = augment_training(task.prepare(config, seed=3), config, task)
    for split in ("train", "validation", "test"):
        pd.testing.assert_frame_equal(data.splits()[split], plain.splits()[split])  # saved, evaluated splits are the originals
    assert len(data.training_frame()) == len(plain.train) + len(data.augmented) > len(plain.train)
    assert set(data.augmented["source"]) <= set(plain.train["source"])  # every copy comes from a training row
    assert set(data.augmented["label"]) <= set(plain.labels)
    record = data.report["augmentation"]
    assert record["seed"] == 3 and record["neighbours_from"] == str(tiny_bert) and record["rows_added"] == len(data.augmented)
    with pytest.raises(ConfigError, match="data.augment.embeddings"):
        bad = load_config(None, [], base=reviews_config(tmp_path, tiny_bert, embeddings=str(tmp_path / "no-such-model")))
        augment_training(task.prepare(bad, seed=3), bad, task)


def test_a_run_records_the_augmentation(tmp_path, tiny_bert):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(reviews_config(tmp_path, tiny_bert, operations=["replace", "swap"], copies=1, seed=5)))
    result = train(load_config(path))
    run = RunDir(result.run_dir)
    record = run.info()["augmentation"]
    assert record["operations"] == ["replace", "swap"] and record["seed"] == 5 and record["rows_added"] > 0
    assert run.read_data_report()["augmentation"] == record
    assert run.read_config().data.augment.operations == ["replace", "swap"]  # config.yaml keeps it: resume and forget augment alike
    assert len(run.read_split("train")) == record["train_rows"]  # copies are not saved as training rows
    assert "Training split augmented (`data.augment`)" in (result.run_dir / "model_card.md").read_text()


@pytest.mark.slow
def test_real_minilm_neighbours_and_an_augmented_head_run(tmp_path):
    from tuneforge.models.neighbours import neighbour_table
    from tuneforge.models.registry import resolve_model

    table = neighbour_table(resolve_model("minilm-l6"), name="minilm-l6", k=5)
    assert "elections" in table.neighbours("election") and "movie" in table.neighbours("film")
    assert not any(w.startswith("##") or w.startswith("[") for w in table.words)
    config = {
        "data": {"train": "bundled:bbc-news", "max_rows": 100, "augment": {"copies": 1}},
        "train": {"method": "head", "max_length": 64},
        "output": {"dir": str(tmp_path / "runs")},
    }
    result = train(load_config(None, [], base=config))
    record = RunDir(result.run_dir).info()["augmentation"]
    assert record["neighbours_from"] == "minilm-l6" and 0 < record["rows_added"] <= record["train_rows"]
    assert result.metrics["accuracy"] > 0.5  # 5 topics, 10 test articles; chance is ~0.2


def test_resume_makes_the_same_copies_again(tmp_path, tiny_bert, caplog):
    import shutil

    first = train(load_config(None, [], base=reviews_config(tmp_path, tiny_bert, copies=2)))
    run = RunDir(first.run_dir)
    recorded = run.info()["augmentation"]
    shutil.rmtree(run.model_dir)  # as if the process died before the model was saved
    run.update(status="failed")
    again = train(None, resume=first.run_dir)
    assert RunDir(again.run_dir).info()["status"] == "complete" and again.resumed
    assert RunDir(again.run_dir).read_data_report()["augmentation"] == recorded
    assert again.metrics["log_loss"] == pytest.approx(first.metrics["log_loss"], rel=1e-9)  # same rows, same model
    assert "copies on resume" not in caplog.text


def test_the_planner_counts_the_copies_a_run_will_train_on(tmp_path, tiny_bert):
    from tuneforge.plan.estimate import data_stats
    from tuneforge.tasks import resolve_task

    plain = load_config(None, [], base=reviews_config(tmp_path, tiny_bert))
    plain.data.augment = None
    augmented = load_config(None, [], base=reviews_config(tmp_path, tiny_bert, operations=["delete", "swap"], copies=2))
    task = resolve_task(plain)
    before = data_stats(plain, task, str(tiny_bert))
    after = data_stats(augmented, task, str(tiny_bert))
    added = after.prepared.report["augmentation"]["rows_added"]
    assert added > 0
    assert after.rows["train"] == before.rows["train"] + added  # steps, time and memory are planned on these
    assert after.rows["validation"] == before.rows["validation"] and after.rows["test"] == before.rows["test"]
