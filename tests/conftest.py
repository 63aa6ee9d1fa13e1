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
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def save_tiny_bert(folder: Path, **config) -> Path:
    """The tiny BERT in `folder`; `config` entries override BertConfig settings (e.g. dropout off)."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(_vocabulary()) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab=str(vocab), do_lower_case=True)
    assert tokenizer("great phone")["input_ids"].count(tokenizer.unk_token_id) == 0, "tiny tokenizer lost its vocabulary"
    torch.manual_seed(0)
    settings = {
        "vocab_size": len(_vocabulary()),
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 128,
        **config,
    }
    BertModel(BertConfig(**settings)).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def save_tiny_llama(
    folder: Path,
    words: list[str],
    *,
    eos: str,
    bos: str | None = None,
    pad: str | None = "<pad>",
    max_positions: int = 128,
    chat_template: str | None = None,
    never_end: bool = False,
) -> Path:
    """A random 2-layer Llama with a word-level tokenizer over `words` (specials first), saved like a hub model.

    `never_end`: the end-of-text logit is zeroed, below the best of the random ones, so tests can count generated tokens."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    specials = {"unk_token": "<unk>", "eos_token": eos, **({"bos_token": bos} if bos else {}), **({"pad_token": pad} if pad else {})}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, **specials)
    if chat_template:
        tokenizer.chat_template = chat_template
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        eos_token_id=vocab[eos],
        pad_token_id=vocab[pad] if pad else None,
        bos_token_id=vocab[bos] if bos else None,
    )
    model = LlamaForCausalLM(config)
    if never_end:
        with torch.no_grad():
            model.lm_head.weight[vocab[eos]].zero_()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
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
