"""The task axis: registry, a toy task added from outside, multilabel and entities end to end on tiny models."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient
from task_data import entity_rows, multilabel_rows, write_jsonl

from tuneforge.config import load_config, validate_config
from tuneforge.engine.run import train
from tuneforge.errors import ConfigError, DataError
from tuneforge.predict.predictor import Predictor
from tuneforge.rundir import RunDir
from tuneforge.tasks import get_task, resolve_task, task_names

from serve_helpers import make_app


def _config(tmp_path, task, train_file, model=None, **train_settings):
    raw = {
        "task": task,
        "data": {"train": str(train_file), "label_column": "tags" if task == "multilabel" else "entities"},
        "model": {"name": str(model) if model else "minilm-l6"},
        "train": {"epochs": 4, "batch_size": 8, "max_length": 24, "learning_rate": 5e-3, "seed": 3, **train_settings},
        "output": {"dir": str(tmp_path / "runs")},
    }
    return validate_config(raw)


def test_unknown_task_and_unsupported_method_are_config_errors_naming_the_choices():
    with pytest.raises(ConfigError, match=r"task: unknown task 'sentiment'; known: chat, classify, entities, lm, multilabel"):
        get_task("sentiment")
    config = validate_config({"task": "entities", "data": {"train": "x.jsonl"}, "train": {"method": "head"}})
    with pytest.raises(ConfigError, match=r"train.method: task 'entities' supports full, lora; got 'head'"):
        resolve_task(config)
    assert {"classify", "multilabel", "entities", "chat"} <= set(task_names())


# -- multilabel ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ml_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ml")
    return write_jsonl(folder / "train.jsonl", multilabel_rows(240, seed=1)), folder


def test_multilabel_labels_parse_from_json_lists_and_separated_strings(tmp_path):
    task = get_task("multilabel")
    data = validate_config({"task": "multilabel", "data": {"train": "x", "label_separator": ";"}}).data
    assert task.parse_label('["b", "a", "a"]', text="t", where="w", data=data) == ["a", "b"]
    assert task.parse_label("b; a", text="t", where="w", data=data) == ["a", "b"]
    assert task.parse_label("", text="t", where="w", data=data) == []
    with pytest.raises(DataError, match=r"w: not a JSON list"):
        task.parse_label("[oops", text="t", where="w", data=data)
    with pytest.raises(DataError, match=r"labels must be strings"):
        task.parse_label([1.5], text="t", where="w", data=data)


@pytest.mark.parametrize("method", ["tfidf", "head", "full"])
def test_multilabel_trains_thresholds_predicts_and_scores_files(tmp_path, ml_files, tiny_bert, method):
    train_file, _ = ml_files
    result = train(_config(tmp_path, "multilabel", train_file, tiny_bert if method != "tfidf" else None, method=method, epochs=6))
    run = RunDir(result.run_dir)
    metrics = json.loads((run.eval_dir / "metrics.json").read_text())
    assert metrics["task"] == "multilabel" and set(metrics["per_label"]) == {"book", "chair", "lamp", "phone"}
    assert {"micro_f1", "macro_f1", "subset_accuracy", "hamming_loss"} <= set(metrics)
    assert (run.eval_dir / "per_label_f1.png").is_file() and (run.eval_dir / "errors.csv").is_file()
    floor = {"tfidf": 0.9, "head": 0.5, "full": 0.5}[method]  # tfidf sees the product words directly
    assert metrics["micro_f1"] >= floor, metrics["micro_f1"]
    predictor = Predictor.load(run.path)
    thresholds = predictor.meta.extra["thresholds"]
    assert len(thresholds) == 4 and all(0 < t < 1 for t in thresholds)
    [both, none] = predictor.predict(["The book and the lamp arrived great", "The package arrived fine"])
    assert set(both.scores) == {"book", "chair", "lamp", "phone"}
    if method == "tfidf":
        assert both.labels and set(both.labels) <= {"book", "lamp"} and none.labels == []
    probs = predictor.predict_proba(["The book arrived"])
    assert probs.shape == (1, 4) and ((probs >= 0) & (probs <= 1)).all()
    assert RunDir(result.run_dir).info()["task"] == "multilabel"


def test_multilabel_file_scoring_and_service_route(tmp_path, ml_files):
    from tuneforge.predict.files import score_file

    train_file, folder = ml_files
    run_dir = train(_config(tmp_path, "multilabel", train_file, None, method="tfidf")).run_dir
    predictor = Predictor.load(run_dir)
    source = folder / "to_score.csv"
    pd.DataFrame(multilabel_rows(30, seed=9)).rename(columns={"tags": "labels"}).to_csv(source, index=False)
    out = tmp_path / "scored.csv"
    score_file(predictor, source, out)
    scored = pd.read_csv(out)
    assert list(scored.columns[:4]) == ["id", "text", "labels", "shop"]  # input columns kept, in order
    assert "pred_labels" in scored and "score_phone" in scored
    assert (scored["pred_labels"].map(json.loads).map(sorted).map("|".join) == scored["labels"].fillna("")).mean() >= 0.9
    app, _ = make_app([f"tags={run_dir}"])
    with TestClient(app) as client:
        body = client.post("/v1/multilabel", json={"texts": ["The phone and the chair arrived"]}).json()
        assert {x["label"] for x in body["results"][0]["labels"]} == {"chair", "phone"}
        wrong = client.post("/v1/classify", json={"texts": ["x"], "model": "tags"})
        assert wrong.status_code == 422 and wrong.json()["error_type"] == "wrong_task"
        assert client.post("/v1/classify", json={"texts": ["x"]}).json()["error_type"] == "unknown_model"
        assert client.get("/v1/models").json()["models"][0]["task"] == "multilabel"


# -- entities ---------------------------------------------------------------------------------


def test_bio_columns_become_character_spans_and_back(tmp_path):
    from tuneforge.data.read import read_table
    from tuneforge.tasks.entities.spans import decode_words

    conll = tmp_path / "ner.conll"
    conll.write_text("-DOCSTART- O\n\nThe O\nbook B-PRODUCT\nlamp I-PRODUCT\nwas O\ngreat B-FEELING\n\nfine B-FEELING\n", encoding="utf-8")
    frame, _ = read_table(conll)
    assert frame["text"].tolist() == ["The book lamp was great", "fine"]
    spans = frame["label"][0]
    assert [(frame["text"][0][s["start"] : s["end"]], s["label"]) for s in spans] == [("book lamp", "PRODUCT"), ("great", "FEELING")]
    words = [("O", 0.9, 0, 3), ("B-X", 0.8, 4, 8), ("I-X", 0.6, 9, 13), ("I-Y", 0.5, 14, 17), ("O", 1.0, 18, 20)]
    assert decode_words(words) == [
        {"label": "X", "start": 4, "end": 13, "score": pytest.approx(0.7)},
        {"label": "Y", "start": 14, "end": 17, "score": 0.5},  # seqeval's lenient rule: a stray I- opens an entity
    ]
    conll.write_text("book X-PRODUCT\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"ner.conll:1: tag 'X-PRODUCT'"):
        read_table(conll)


def test_entity_labels_align_to_first_word_pieces(tiny_bert):
    from transformers import AutoTokenizer

    from tuneforge.tasks.entities.spans import IGNORE, tag_names, token_tags

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    text = "The lamp was great"
    encoded = tokenizer([text], return_offsets_mapping=True)
    tags = tag_names(["FEELING", "PRODUCT"])
    index = {t: i for i, t in enumerate(tags)}
    ids = token_tags(encoded.word_ids(0), encoded["offset_mapping"][0], [{"start": 4, "end": 8, "label": "PRODUCT"}], index)
    assert [tags[i] if i != IGNORE else None for i in ids] == [None, "O", "B-PRODUCT", "O", "O", None]


def test_bad_spans_name_the_row(tmp_path):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"text": "The lamp", "entities": [{"start": 4, "end": 99, "label": "PRODUCT"}]}] * 20)
    with pytest.raises(DataError, match=r"bad.jsonl:1: column 'entities'.*does not lie inside the text"):
        train(_config(tmp_path, "entities", bad, None, method="full"))


def test_entities_train_predict_spans_serve_and_score(tmp_path, tiny_bert):
    from tuneforge.predict.files import score_file

    train_file = write_jsonl(tmp_path / "ents.jsonl", entity_rows(300, seed=2))
    result = train(_config(tmp_path, "entities", train_file, tiny_bert, method="full", epochs=8))
    run = RunDir(result.run_dir)
    metrics = json.loads((run.eval_dir / "metrics.json").read_text())
    assert metrics["task"] == "entities" and set(metrics["per_type"]) == {"FEELING", "PRODUCT"}
    assert metrics["micro_f1"] >= 0.8, metrics
    predictor = Predictor.load(run.path)
    assert predictor.meta.transforms == []  # spans index the raw text: nothing may change it
    text = "  The   chair was fine"
    [prediction] = predictor.predict([text])
    found = {(e.label, e.text) for e in prediction.entities}
    assert found == {("PRODUCT", "chair"), ("FEELING", "fine")}
    assert all(text[e.start : e.end] == e.text and 0 < e.score <= 1 for e in prediction.entities)
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": text, "id": 7}])
    score_file(predictor, source, tmp_path / "out.jsonl")
    scored = json.loads((tmp_path / "out.jsonl").read_text())
    assert scored["id"] == 7 and {e["text"] for e in json.loads(scored["entities"])} == {"chair", "fine"}
    app, _ = make_app([run.path])
    with TestClient(app) as client:
        body = client.post("/v1/entities", json={"texts": [text]}).json()
        assert {(e["label"], e["text"], text[e["start"] : e["end"]]) for e in body["results"][0]["entities"]} == {
            ("PRODUCT", "chair", "chair"),
            ("FEELING", "fine", "fine"),
        }


# -- a task added from outside, in under 60 lines -------------------------------------------------


def test_a_toy_task_plugs_in_through_the_registry(tmp_path):
    from tuneforge.tasks import register_task
    from tuneforge.tasks.base import LinearFit, Task

    class Opening(Task):
        """Does a text open with a greeting? The label comes from the text itself (the label column is ignored)."""

        name, methods, route = "opening", ("tfidf",), "/v1/classify"

        def parse_label(self, raw, *, text, where, data):
            return "greeting" if text.split()[0] in ("hello", "hi") else "other"

        def label_names(self, frame):
            return ["greeting", "other"]

        def row_labels(self, target):
            return [target]

        def encode(self, tokenizer, frame, labels, *, max_length):
            raise NotImplementedError

        def validation_scores(self, targets, logits):
            return {}

        def linear_targets(self, frame, labels):
            return np.array([labels.index(x) for x in frame["label"]])

        def fit_linear(self, x_train, y_train, x_val, y_val, *, labels, c, seed, train):
            from sklearn.linear_model import LogisticRegression

            clf = LogisticRegression(C=c).fit(x_train, y_train)
            accuracy = float((clf.predict(x_val) == y_val).mean())
            weight = np.vstack([np.zeros_like(clf.coef_), clf.coef_]).astype(np.float32)
            return LinearFit(
                weight,
                np.array([0, clf.intercept_[0]], dtype=np.float32),
                {"accuracy": accuracy, "macro_f1": accuracy, "micro_f1": accuracy},
            )

        def activate(self, logits):
            return logits.argmax(axis=1)

        def predictions(self, raw, meta):
            return [meta.labels[i] for i in raw]

        def scoring_columns(self, raw, meta):
            return {"length": self.predictions(raw, meta)}

        def evaluate(self, predictor, frame, out_dir, *, split):
            right = np.mean([p == t for p, t in zip(predictor.predict(frame["text"].tolist()), frame["label"])])
            return {"split": split, "task": self.name, "accuracy": float(right), "n": len(frame)}

        def card_results(self, metrics):
            return f"accuracy {metrics['accuracy']:.3f}\n"

    register_task("opening", Opening)
    config_file = tmp_path / "c.yaml"
    rows = [{"text": f"{w} there number {n}", "label": "?"} for w in ("hello", "hi", "so", "then") for n in range(15)]
    config_file.write_text(
        yaml.safe_dump(
            {
                "task": "opening",
                "data": {"train": str(write_jsonl(tmp_path / "d.jsonl", rows))},
                "train": {"method": "tfidf"},
                "output": {"dir": str(tmp_path / "runs")},
            }
        )
    )
    result = train(load_config(config_file))
    assert result.metrics["task"] == "opening" and result.metrics["accuracy"] == 1.0
    assert Predictor.load(result.run_dir).predict(["hello you", "then you"]) == ["greeting", "other"]


def test_multilabel_strata_never_leave_a_single_row_alone():
    task = get_task("multilabel")
    frame = pd.DataFrame({"label": [["a"]] * 6 + [["b"]] * 6 + [["c"]] + [[]] * 3})
    key = task.split_key(frame)
    assert key.value_counts().min() >= 2 and key.iloc[12] in ("a", "b", "(none)")
