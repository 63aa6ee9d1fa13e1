"""Shared fixtures: tiny randomly initialised BERT models and tiny data, built in the test session."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning OpenMP threads slow a shared CPU 3-10x
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# the lineage key and other per-user files go to a throwaway folder, not the tester's ~/.cache
os.environ.setdefault("TUNEFORGE_CACHE", tempfile.mkdtemp(prefix="tuneforge-test-cache-"))

DATA = Path(__file__).parent / "data"
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _vocabulary() -> list[str]:
    words = set()
    for path in DATA.glob("reviews_*"):
        words.update(re.findall(r"[a-z]+", path.read_text(encoding="utf-8").lower()))
    return SPECIALS + sorted(words) + list("abcdefghijklmnopqrstuvwxyz0123456789.,!?&;<>/")


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A 2-layer BERT with a word-level vocabulary of the test data, saved like a hub model."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(_vocabulary()) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab=str(vocab), do_lower_case=True)
    assert tokenizer("great phone")["input_ids"].count(tokenizer.unk_token_id) == 0, "tiny tokenizer lost its vocabulary"
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(_vocabulary()),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def write_config(tmp_path: Path, model: Path | None, **train) -> Path:
    """A config for the tiny review data; `train` entries override train.* settings."""
    import yaml

    config = {
        "data": {
            "train": str(DATA / "reviews_train.csv"),
            "text_column": "review",
            "label_column": "sentiment",
        },
        "model": {"name": str(model) if model else "minilm-l6"},
        "train": {"method": "full", "epochs": 2, "batch_size": 8, "max_length": 32, "learning_rate": 5e-3, "seed": 1, **train},
        "output": {"dir": str(tmp_path / "runs")},
    }
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def run_cli(monkeypatch, capsys, *args):
    """Run `tuneforge ARGS...` in-process; returns (exit code, stdout, stderr)."""
    import sys

    import pytest

    from tuneforge.cli import main

    monkeypatch.setattr(sys, "argv", ["tuneforge", *map(str, args)])
    with pytest.raises(SystemExit) as info:
        main()
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err
