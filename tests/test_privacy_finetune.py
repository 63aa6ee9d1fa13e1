"""Differential privacy for full and lora fine-tuning: DP-SGD in the engine's own loop, ε spent recorded, the
model saved like any fine-tune, and under LoRA only the trainable parameters get per-example gradients."""

from __future__ import annotations

import json

import pytest
import yaml

from tuneforge.config import PrivacyConfig, load_config
from tuneforge.engine.run import train
from tuneforge.errors import ConfigError
from tuneforge.predict.predictor import Predictor

from conftest import write_config


def _private_config(tmp_path, model, *, method: str, privacy: dict, task: str = "classify", **train):
    path = write_config(tmp_path, model, method=method, **train)
    raw = yaml.safe_load(path.read_text())
    raw["train"]["privacy"] = privacy
    raw["task"] = task
    path.write_text(yaml.safe_dump(raw))
    return load_config(path)


def test_fine_tunes_plan_their_own_epochs_and_head_keeps_thirty(tmp_path):
    lora = _private_config(tmp_path / "a", None, method="lora", privacy={"epsilon": 8}, epochs=2.5)
    assert lora.train.privacy.epochs == 3  # train.epochs rounded up
    explicit = _private_config(tmp_path / "b", None, method="full", privacy={"epsilon": 8, "epochs": 1})
    assert explicit.train.privacy.epochs == 1
    head = _private_config(tmp_path / "c", None, method="head", privacy={"epsilon": 8})
    assert head.train.privacy.epochs == 30


@pytest.mark.parametrize("method", ["lora", "full"])
def test_a_private_fine_tune_spends_its_budget_and_predicts_like_any_other(tmp_path, tiny_bert, method):
    config = _private_config(tmp_path, tiny_bert, method=method, privacy={"epsilon": 8, "epochs": 2, "batch_size": 16})
    result = train(config)
    info = json.loads((result.run_dir / "run.json").read_text())
    privacy = info["train"]["privacy"]
    assert 7.5 < privacy["epsilon_spent"] <= 8 * 1.01  # calibrated to the request, not far below it
    assert privacy["epsilon_requested"] == 8 and privacy["noise_multiplier"] > 0 and privacy["steps"] > 0
    assert privacy["delta"] == pytest.approx(privacy["sample_rate"] / 160, rel=1e-3)  # 1/(10 n), batch 16 of n rows
    assert info["train"]["warm_start"] == "none" and info["train"]["kept"] == "fine-tuned"
    model_dir = result.run_dir / "model"
    assert not (model_dir / "adapter_config.json").exists()  # LoRA merged: plain weights
    meta = json.loads((model_dir / "tuneforge.json").read_text())
    assert meta["kind"] == "transformer" and meta["extra"]["privacy"]["epsilon_spent"] == privacy["epsilon_spent"]
    predictions = Predictor.load(result.run_dir).predict(["great phone, love it", "terrible battery"])
    assert {p.label for p in predictions} <= set(meta["labels"]) and len(predictions) == 2
    assert "Differentially private (DP-SGD, Opacus): ε spent" in (result.run_dir / "model_card.md").read_text()
    assert "ε spent" in (result.run_dir / "report.html").read_text()
    logged = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    spent = [r["epsilon_spent"] for r in logged if "epsilon_spent" in r]
    assert spent and spent == sorted(spent) and spent[-1] <= privacy["epsilon_spent"] + 1e-4  # ε grows as it trains


def test_private_lora_multilabel_learns_its_thresholds_and_predicts(tmp_path, tiny_bert):
    # the reviews' one sentiment per row is a valid multilabel target too
    config = _private_config(tmp_path, tiny_bert, method="lora", task="multilabel", privacy={"epsilon": 4, "epochs": 1, "batch_size": 16})
    result = train(config)
    info = json.loads((result.run_dir / "run.json").read_text())
    assert 3.7 < info["train"]["privacy"]["epsilon_spent"] <= 4 * 1.01
    assert len(info["train"]["thresholds"]) == len(json.loads((result.run_dir / "model" / "tuneforge.json").read_text())["labels"])
    assert len(Predictor.load(result.run_dir).predict(["great phone, love it"])) == 1


def test_an_unreachable_budget_is_a_config_error(tmp_path, tiny_bert):
    config = _private_config(tmp_path, tiny_bert, method="lora", privacy={"epsilon": 1e-9, "epochs": 1})
    with pytest.raises(ConfigError, match=r"train.privacy \(method lora\): ε=1e-09 cannot be reached"):
        train(config)


def test_lora_gives_per_example_gradients_to_trainable_parameters_only(tiny_bert):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

    from tuneforge.engine.private import make_private
    from tuneforge.models.lora import wrap_lora
    from tuneforge.sections import LoraConfig

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    model = wrap_lora(AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2), LoraConfig(r=4), "SEQ_CLS")
    texts = ["great phone", "terrible battery", "love it", "awful screen"] * 4
    rows = [{**{k: v[i] for k, v in tokenizer(texts).items()}, "labels": i % 2} for i in range(len(texts))]
    loader = torch.utils.data.DataLoader(rows, batch_size=8, collate_fn=DataCollatorWithPadding(tokenizer))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    privacy = PrivacyConfig(epsilon=8, epochs=1)
    _, private_model, optimizer, private_loader = make_private(model, optimizer, loader, privacy=privacy, delta=1e-3, n=16, where="test")
    batch = next(b for b in private_loader if len(b["input_ids"]))
    private_model(**batch).loss.backward()
    sampled = {n for n, p in model.named_parameters() if getattr(p, "grad_sample", None) is not None}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert sampled == trainable and any("lora_" in n for n in sampled) and any("classifier" in n for n in sampled)
    assert len(trainable) < len(list(model.parameters()))  # the frozen base weights got none
