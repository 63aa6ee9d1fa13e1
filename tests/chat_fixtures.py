"""Tiny models and a tiny knowledge base for the chat tests, built in the test session.

The retrieval encoder is a 2-layer BERT whose attention and feed-forward outputs are
zeroed and whose position embeddings are zero: its mean-pooled vector is then a
bag of (random, nearly orthogonal) word vectors, so cosine similarity follows word
overlap — a real BertModel, loaded the normal way, with retrieval that can be reasoned
about. The generator is a random 2-layer Llama with a word-level tokenizer and a chat template.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

FAQ = [
    ("how do i reset my password", "Open settings and choose reset password.", "account"),
    ("what are your opening hours", "We are open nine to five on weekdays.", "shop"),
    ("how can i return a product", "Send it back within thirty days with the receipt.", "orders"),
    ("do you ship abroad", "Yes we ship to every country in europe.", "orders"),
]
DOCUMENTS = {
    "battery.txt": "Battery guide\nThe battery of the zephyr phone lasts two days. Charge the zephyr battery with the blue cable. "
    "A full charge takes ninety minutes and the light turns green when the battery is full.",
    "warranty.md": "# Warranty\nThe warranty covers the zephyr phone for three years. Water damage is not covered by the warranty. "
    "Keep the receipt to claim the warranty at any shop.",
}
QUERIES = [
    {
        "query": "how do i reset my password please",
        "reference": FAQ[0][1],
        "expected_source": "faq.csv:2",
        "kind": "faq",
        "split": "validation",
    },
    {"query": "what are the opening hours", "reference": FAQ[1][1], "expected_source": "faq.csv:3", "kind": "faq", "split": "validation"},
    {
        "query": "how long does the zephyr battery last",
        "reference": "two days",
        "expected_source": "battery.txt",
        "kind": "document",
        "split": "validation",
    },
    {
        "query": "what does the warranty cover",
        "reference": "the zephyr phone for three years",
        "expected_source": "warranty.md",
        "kind": "document",
        "split": "validation",
    },
    {"query": "purple elephant dancing tonight", "reference": None, "expected_source": None, "kind": "out_of_scope", "split": "validation"},
    {"query": "green violin stolen yesterday", "reference": None, "expected_source": None, "kind": "out_of_scope", "split": "validation"},
    {"query": "how can i return my product", "reference": FAQ[2][1], "expected_source": "faq.csv:4", "kind": "faq", "split": "test"},
    {
        "query": "how long does a full charge take",
        "reference": "ninety minutes",
        "expected_source": "battery.txt",
        "kind": "document",
        "split": "test",
    },
    {"query": "purple violin dancing yesterday", "reference": None, "expected_source": None, "kind": "out_of_scope", "split": "test"},
]
EXTRA_WORDS = "please my the a is question tonight elephant purple dancing green violin stolen yesterday long last cover take full charge"


def vocabulary() -> list[str]:
    text = " ".join([*(q + " " + a for q, a, _ in FAQ), *DOCUMENTS.values(), *(q["query"] for q in QUERIES), EXTRA_WORDS])
    return sorted(set(re.findall(r"[a-z]+", text.lower())))


def bag_of_words_bert(folder: Path) -> Path:
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = specials + vocabulary() + list(".,!?#:;'")
    (folder / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab=str(folder / "vocab.txt"), do_lower_case=True)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(words), hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_position_embeddings=512
    )
    model = BertModel(config)
    with torch.no_grad():
        model.embeddings.position_embeddings.weight.zero_()
        model.embeddings.token_type_embeddings.weight.zero_()
        for token in [*specials, *".,!?#:;'"]:  # punctuation and special tokens carry no meaning here
            model.embeddings.word_embeddings.weight[words.index(token)].zero_()
        for layer in model.encoder.layer:
            for dense in (layer.attention.output.dense, layer.output.dense):
                dense.weight.zero_()
                dense.bias.zero_()
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|> {{ m['role'] }} {{ m['content'] }} <|im_end|> {% endfor %}"
    "{% if add_generation_prompt %}<|im_start|> assistant {% endif %}"
)


def tiny_llama(folder: Path) -> Path:
    from conftest import save_tiny_llama

    specials = ["<unk>", "<pad>", "<|im_start|>", "<|im_end|>"]
    words = specials + vocabulary() + ["system", "user", "assistant", "passages", "1", "2", "3", "[", "]", "(", ")", ".", ":", ","]
    # never ends early: the tests count generated tokens
    return save_tiny_llama(
        folder, words, eos="<|im_end|>", bos="<|im_start|>", max_positions=4096, chat_template=CHAT_TEMPLATE, never_end=True
    )


def write_kb(folder: Path) -> dict[str, Path]:
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    faq = folder / "faq.csv"
    pd.DataFrame([{"question": q, "answer": a, "category": c} for q, a, c in FAQ]).to_csv(faq, index=False)
    docs = folder / "docs"
    docs.mkdir(exist_ok=True)
    for name, text in DOCUMENTS.items():
        (docs / name).write_text(text, encoding="utf-8")
    queries = folder / "queries.jsonl"
    with queries.open("w", encoding="utf-8") as fh:
        for q in QUERIES:
            expected = q["expected_source"]
            if expected and expected.startswith("faq.csv"):
                expected = f"{faq}:{expected.split(':')[1]}"
            elif expected:
                expected = str(docs / expected)
            fh.write(json.dumps({**q, "expected_source": expected}) + "\n")
    return {"faq": faq, "docs": docs, "queries": queries}


def build_models(root: Path) -> dict[str, Path]:
    """The retrieval encoder, the generator and the knowledge-base files, under `root`."""
    return {"bert": bag_of_words_bert(root / "bert"), "llama": tiny_llama(root / "llama"), **write_kb(root / "kb")}


def chat_config(models: dict[str, Path], tmp_path: Path, **chat):
    """A validated `task: chat` config over `build_models`' files; `chat` entries override chat.* settings."""
    from tuneforge.config import validate_config

    raw = {
        "task": "chat",
        "data": {"train": str(models["faq"])},
        "model": {"name": str(models["bert"])},
        "chat": {
            "documents": str(models["docs"]),
            "eval_queries": str(models["queries"]),
            "generator": str(models["llama"]),
            "max_new_tokens": 6,
            "passage_words": 20,
            "passage_overlap": 5,
            **chat,
        },
        "output": {"dir": str(tmp_path / "runs")},
    }
    return validate_config(raw)
