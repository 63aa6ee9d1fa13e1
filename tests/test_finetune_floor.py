"""Fine-tuning that never loses to its own frozen-encoder probe: warm start, per-group learning rates,
training length from validation, and the floor that keeps the better model."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from tuneforge.config import load_config, validate_config
from tuneforge.engine.run import train
from tuneforge.models.artifact import ModelMeta
from tuneforge.predict.predictor import Predictor
from tuneforge.rundir import RunDir

from conftest import write_config


def _evaluations(run_dir) -> list[dict]:
    lines = [json.loads(x) for x in RunDir(run_dir).metrics_file.read_text().splitlines()]
    return [x for x in lines if "eval_macro_f1" in x and not x.get("probe")]


def _probe_scores(run_dir) -> list[float]:
    lines = [json.loads(x) for x in RunDir(run_dir).metrics_file.read_text().splitlines()]
    return [x["eval_macro_f1"] for x in lines if x.get("probe")]


def test_method_defaults_for_learning_rates_are_filled_in():
    full = validate_config({"data": {"train": "x.csv"}}).train
    lora = validate_config({"data": {"train": "x.csv"}, "train": {"method": "lora"}}).train
    assert (full.learning_rate, full.head_learning_rate) == (5e-5, 1e-3)
    assert (lora.learning_rate, lora.head_learning_rate) == (1e-3, 1e-3)
    assert validate_config({"data": {"train": "x.csv"}, "train": {"learning_rate": 2e-5}}).train.learning_rate == 2e-5
    assert full.epochs is None and full.planned_epochs == full.max_epochs == 20


def test_head_parameters_get_their_own_learning_rate(tiny_bert):
    from transformers import AutoModelForSequenceClassification

    from tuneforge.engine.optim import adamw

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=3)
    groups = adamw(model, body_lr=1e-5, head_lr=1e-3, weight_decay=0.01).param_groups
    head = {id(p) for p in model.classifier.parameters()}
    for group in groups:
        is_head = {id(p) in head for p in group["params"]}
        assert len(is_head) == 1
        assert group["lr"] == (1e-3 if is_head.pop() else 1e-5)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert all(g["weight_decay"] == 0.0 for g in groups if all(p.ndim == 1 for p in g["params"]))


def test_warm_start_begins_at_the_probe_score_and_keeps_mean_pooling(tmp_path, tiny_bert):
    result = train(load_config(write_config(tmp_path, tiny_bert, method="full", epochs=1)))
    first = _evaluations(result.run_dir)[0]
    assert first["step"] == 0  # the warm start is evaluated before any step
    assert first["eval_macro_f1"] == pytest.approx(max(_probe_scores(result.run_dir)), abs=1e-6)
    info = RunDir(result.run_dir).info()["train"]
    assert info["warm_start"] == "probe" and info["learning_rates"] == {"body": 5e-3, "head": 1e-3}
    if info["kept"] == "fine-tuned":
        meta = ModelMeta.read(RunDir(result.run_dir).model_dir)
        assert meta.extra["pooling"] == "mean"
        # reloaded with mean pooling: predictions match the metrics the run reported
        predictor = Predictor.load(result.run_dir)
        assert predictor.backend.model.base_model.pooler is None


def test_early_stopping_decides_the_length_and_the_summary_says_why(tmp_path, tiny_bert):
    config = write_config(
        tmp_path,
        tiny_bert,
        method="full",
        epochs=None,
        max_epochs=8,
        learning_rate=1e-12,
        head_learning_rate=1e-12,
        early_stopping_patience=1,
        keep="fine-tuned",
    )
    result = train(load_config(config))
    info = result.train_info
    assert info["planned_epochs"] == 8 and info["stopped_epoch"] < 8
    assert info["stop_reason"].startswith("early stopping: validation macro_f1 did not improve for 1 evaluations")
    card = RunDir(result.run_dir).model_card_file.read_text()
    assert "Stopped at epoch" in card and "early stopping" in card


def test_a_fine_tune_below_its_probe_keeps_the_probe(tmp_path, tiny_bert):
    """A fresh head that cannot learn (learning rates ~0) ends below the probe: the run keeps the probe and says so."""
    config = write_config(tmp_path, tiny_bert, method="full", epochs=1, warm_start="none", learning_rate=1e-12, head_learning_rate=1e-12)
    result = train(load_config(config))
    info = RunDir(result.run_dir).info()["train"]
    assert info["kept"] == "probe" and "below the frozen-encoder probe" in info["kept_reason"]
    meta = ModelMeta.read(RunDir(result.run_dir).model_dir)
    assert meta.kind == "head" and meta.method == "full" and meta.extra["kept_over"] == "full"
    assert result.metrics["macro_f1"] >= 0.0 and "kept the probe" in RunDir(result.run_dir).model_card_file.read_text()
    weights = load_file(str(RunDir(result.run_dir).model_dir / "head.safetensors"))
    assert weights["weight"].shape == (3, 32) and torch.isfinite(weights["weight"]).all()


def test_keep_fine_tuned_keeps_it_even_below_the_probe(tmp_path, tiny_bert):
    config = write_config(
        tmp_path, tiny_bert, method="full", epochs=1, warm_start="none", learning_rate=1e-12, head_learning_rate=1e-12, keep="fine-tuned"
    )
    result = train(load_config(config))
    assert result.train_info["kept"] == "fine-tuned" and ModelMeta.read(RunDir(result.run_dir).model_dir).kind == "transformer"


def test_multilabel_warm_start_loads_one_row_per_label(tmp_path, tiny_bert):
    from task_data import multilabel_rows, write_jsonl

    data = write_jsonl(tmp_path / "ml.jsonl", multilabel_rows(120, seed=4))
    config = validate_config(
        {
            "task": "multilabel",
            "data": {"train": str(data), "label_column": "tags"},
            "model": {"name": str(tiny_bert)},
            "train": {"method": "lora", "epochs": 1, "batch_size": 8, "max_length": 24, "seed": 1},
            "output": {"dir": str(tmp_path / "runs")},
        }
    )
    info = train(config).train_info
    assert info["warm_start"] == "probe" and "probe_validation_macro_f1" in info
