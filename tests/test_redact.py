"""PII redaction: a recorded transform replayed in training, predict and serve; typed placeholders or salted hashes."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient

from tuneforge.config import load_config
from tuneforge.data.redact import redactor, transform_name
from tuneforge.engine.run import train
from tuneforge.errors import ConfigError
from tuneforge.predict.predictor import Predictor
from tuneforge.rundir import RunDir

from serve_helpers import make_app

ALL = ["EMAIL", "PHONE", "PERSON", "LOCATION", "CREDIT_CARD", "IBAN", "IP", "URL"]
SAMPLE = (
    "Call Maria Gonzalez on +44 20 7946 0958 or write to maria.gonzalez@example.com; card 4111 1111 1111 1111, "
    "IBAN GB82 WEST 1234 5698 7654 32, logged in from 192.168.1.20 via https://shop.example.com/orders."
)
SECRETS = ["maria.gonzalez@example.com", "7946 0958", "4111 1111 1111 1111", "GB82 WEST", "192.168.1.20", "shop.example.com", "Gonzalez"]


def test_typed_placeholders_replace_every_kind():
    clean = redactor(transform_name(ALL, "replace"))(SAMPLE)
    for secret in SECRETS:
        assert secret not in clean, (secret, clean)
    for token in ("<EMAIL>", "<PHONE>", "<CREDIT_CARD>", "<IBAN>", "<IP>", "<URL>", "<PERSON>"):
        assert token in clean, (token, clean)


def test_hash_keeps_one_value_one_token_and_depends_on_the_run_salt():
    first, second = transform_name(["EMAIL"], "hash"), transform_name(["EMAIL"], "hash")
    assert first != second  # a fresh salt per run
    text = "from a@example.com, again a@example.com, then b@example.com"
    once = redactor(first)(text)
    tokens = [w.strip(",") for w in once.split() if w.startswith("<EMAIL_")]
    assert len(tokens) == 3 and tokens[0] == tokens[1] != tokens[2] and "example.com" not in once
    assert redactor(second)(text) != once


def test_settings_are_checked_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="data.redact: unknown entity 'SHOE_SIZE'"):
        transform_name(["SHOE_SIZE"], "replace")
    spans = tmp_path / "spans.jsonl"
    spans.write_text(json.dumps({"text": "Sales rose 5%", "entities": [{"start": 11, "end": 13, "label": "PERCENT"}]}) + "\n")
    config = {
        "task": "entities",
        "data": {"train": str(spans), "label_column": "entities", "redact": ["EMAIL"]},
        "train": {"method": "full"},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match="task entities answers with offsets into the raw text"):
        train(load_config(path))


@pytest.fixture(scope="module")
def redacted_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("redact")
    rows = []
    for i in range(60):
        good = i % 2 == 0
        who = ["Maria Gonzalez", "John Smith", "Aiko Tanaka"][i % 3]
        rows.append(
            {
                "text": f"order {i}: {'great fast delivery' if good else 'broken item, refund please'} - {who}, {who.split()[0].lower()}{i}@example.com, +1 415 555 01{i:02d}",
                "label": "positive" if good else "negative",
            }
        )
    pd.DataFrame(rows).to_csv(tmp / "tickets.csv", index=False)
    config = {
        "data": {"train": str(tmp / "tickets.csv"), "redact": ["EMAIL", "PHONE", "PERSON"]},
        "train": {"method": "tfidf"},
        "output": {"dir": str(tmp / "runs")},
    }
    (tmp / "c.yaml").write_text(yaml.safe_dump(config))
    return train(load_config(tmp / "c.yaml")).run_dir


def test_training_data_saved_splits_and_report_hold_no_raw_identifier(redacted_run):
    run = RunDir(redacted_run)
    for split in ("train", "validation", "test"):
        text = run.split_file(split).read_text()
        assert "@example.com" not in text and "555 01" not in text and "Gonzalez" not in text
        assert "<EMAIL>" in text
    report = run.read_data_report()
    assert report["redacted"]["EMAIL"] == 60 and report["redacted"]["PHONE"] >= 55 and report["redacted"]["PERSON"] >= 40
    assert report["files"]["train"]["modified"]["pii_redacted"] == 60
    assert any(t.startswith("redact:EMAIL+PHONE+PERSON:replace") for t in report["transforms"])
    assert "Personal data replaced before training" in (redacted_run / "model_card.md").read_text()


def test_predict_and_serve_replay_the_redaction(redacted_run):
    predictor = Predictor.load(redacted_run)
    seen = predictor._clean(["refund please - Ana Lopez, ana@example.org, +1 415 555 0199"])[0]
    assert "ana@example.org" not in seen and "<EMAIL>" in seen and "<PHONE>" in seen
    app, _ = make_app([redacted_run])
    with TestClient(app) as client:
        answer = client.post("/v1/classify", json={"texts": ["great fast delivery - bob@example.com"]})
        assert answer.status_code == 200 and answer.json()["results"][0]["label"] in ("positive", "negative")
