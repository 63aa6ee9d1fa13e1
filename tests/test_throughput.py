"""Training speed on short, uneven texts: length grouping cuts padding; every run reports texts/s, tokens/s and padding."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from tuneforge.config import load_config
from tuneforge.engine.run import train
from tuneforge.engine.throughput import TokenCounter, training_seconds


def _uneven_reviews(path, n: int = 400, seed: int = 0):
    """Half two-word reviews, half long ones, shuffled: the padding a length-blind batcher pays for."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = "positive" if i % 2 else "negative"
        word = "excellent" if label == "positive" else "terrible"
        text = f"{word} phone" if i % 4 < 2 else " ".join([f"the phone was {word} and the battery was {word}"] * 4)
        rows.append({"review": text, "sentiment": label})
    frame = pd.DataFrame(rows).sample(frac=1, random_state=int(rng.integers(1000)))
    frame.to_csv(path, index=False)
    return path


def _config(tmp_path, tiny_bert, **train):
    tmp_path.mkdir(parents=True, exist_ok=True)
    raw = {
        "data": {
            "train": str(_uneven_reviews(tmp_path / "uneven.csv")),
            "text_column": "review",
            "label_column": "sentiment",
            "dedupe": False,
        },
        "model": {"name": str(tiny_bert)},
        "train": {
            "method": "full",
            "epochs": 1,
            "batch_size": 8,
            "max_length": 64,
            "warm_start": "none",
            "keep": "fine-tuned",
            "seed": 3,
            **train,
        },
        "output": {"dir": str(tmp_path / "runs")},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_token_counter_counts_real_and_padded_positions():
    counter = TokenCounter(lambda features: {"attention_mask": torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])})
    counter([{}, {}])
    assert (counter.texts, counter.tokens, counter.positions) == (2, 6, 8)
    summary = counter.summary(2.0)
    assert summary["padding_share"] == 0.25 and summary["train_texts_per_second"] == 1.0 and summary["train_tokens_per_second"] == 3.0
    assert training_seconds(10.0, [{"eval_runtime": 1.5}, {"loss": 0.3}, {"eval_runtime": 0.5}]) == 8.0


def test_grouping_by_length_cuts_padding_and_every_run_reports_its_speed(tmp_path, tiny_bert):
    grouped = train(load_config(_config(tmp_path / "grouped", tiny_bert)))
    mixed = train(load_config(_config(tmp_path / "mixed", tiny_bert, group_by_length=False)))
    speed_g, speed_m = grouped.train_info["throughput"], mixed.train_info["throughput"]
    assert speed_m["padding_share"] > 0.3  # short and long texts share batches
    assert speed_g["padding_share"] < speed_m["padding_share"] / 2
    cost = json.loads((grouped.run_dir / "cost.json").read_text())
    for key in ("train_texts_per_second", "train_tokens_per_second", "padding_share"):
        assert cost[key] == speed_g[key] and cost[key] >= 0
    assert "of computed positions were padding" in (grouped.run_dir / "model_card.md").read_text()


def test_precision_auto_is_bf16_where_native_and_explicit_choices_the_device_cannot_run_are_errors(monkeypatch):
    from tuneforge.engine.args import training_precision
    from tuneforge.errors import ConfigError

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    assert training_precision("auto", "cpu") == "bf16" and training_precision("fp32", "cpu") == "fp32"
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    assert training_precision("auto", "cpu") == "fp32"
    with pytest.raises(ConfigError, match="train.precision=bf16: this cpu has no native bfloat16"):
        training_precision("bf16", "cpu")
    with pytest.raises(ConfigError, match="train.precision=fp16 needs a CUDA GPU"):
        training_precision("fp16", "cpu")
    assert training_precision("auto", "mps") == "fp32"


def test_a_run_trains_in_the_precision_it_resolved_and_records_it(tmp_path, tiny_bert, monkeypatch):
    from transformers import Trainer

    seen = {}
    real_init = Trainer.__init__

    def spy(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        seen["bf16"] = self.args.bf16

    monkeypatch.setattr(Trainer, "__init__", spy)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    result = train(load_config(_config(tmp_path / "bf16", tiny_bert)))
    assert seen["bf16"] is True and result.train_info["precision"] == "bf16"
    assert "bf16 arithmetic" in (result.run_dir / "model_card.md").read_text()
    assert json.loads((result.run_dir / "run.json").read_text())["train"]["precision"] == "bf16"
    result = train(load_config(_config(tmp_path / "fp32", tiny_bert, precision="fp32")))
    assert seen["bf16"] is False and result.train_info["precision"] == "fp32"
