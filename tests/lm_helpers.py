"""Tiny language models and corpora for the lm task tests, built in the test session (no downloads)."""

from __future__ import annotations

import random
from pathlib import Path

import yaml

PRODUCTS = ["blender", "headphones", "lamp", "phone"]
FEELINGS = ["excellent", "fantastic", "great", "terrible"]


def corpus_lines(n: int, seed: int = 0) -> list[str]:
    """Repetitive sentences in words the tiny test tokenizers know: a model learns them in a few steps."""
    rng = random.Random(seed)
    return [
        f"the {rng.choice(PRODUCTS)} was {rng.choice(FEELINGS)} and the {rng.choice(PRODUCTS)} was {rng.choice(FEELINGS)}" for _ in range(n)
    ]


def write_corpus(folder: Path, n: int = 80, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "corpus.txt"
    path.write_text("\n".join(corpus_lines(n, seed)) + "\n", encoding="utf-8")
    return path


def tiny_llama(folder: Path) -> Path:
    """A 2-layer Llama with a word-level tokenizer (end-of-text `</s>`), saved like a hub model."""
    from conftest import save_tiny_llama

    words = ["<unk>", "<pad>", "</s>", *sorted({w for line in corpus_lines(200) for w in line.split()}), "and", "was"]
    return save_tiny_llama(folder, words, eos="</s>")


def lm_config(tmp_path: Path, model: Path, corpus: Path, *, objective: str = "mlm", method: str = "full", **pretrain) -> Path:
    config = {
        "task": "lm",
        "data": {"train": str(corpus)},
        "model": {"name": str(model)},
        "pretrain": {"objective": objective, "block_size": 32, **pretrain},
        "train": {
            "method": method,
            "epochs": 4,
            "batch_size": 8,
            "learning_rate": 5e-3,
            "head_learning_rate": 5e-3,
            "seed": 1,
            "early_stopping_patience": None,
        },
        "output": {"dir": str(tmp_path / "runs")},
    }
    path = tmp_path / "pretrain.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path
