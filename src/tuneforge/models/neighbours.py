"""Nearest words in an encoder's input-embedding space: what `data.augment` replaces and inserts words with.

The input-embedding matrix ships with every encoder, so neighbours need no word
list or download. Only whole-word vocabulary entries take part (no `##` pieces,
special or unused tokens), so a replacement is always a real word.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from tuneforge.data.augment import NeighbourTable

MIN_LETTERS = 2


def whole_words(tokenizer) -> list[tuple[str, int]]:
    """(word, token id) of the vocabulary entries that are a whole alphabetic word on their own, first id per word."""
    specials = set(tokenizer.all_special_ids)
    candidates: dict[str, int] = {}
    for token, token_id in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1]):
        if token_id in specials or token.startswith("##"):
            continue
        word = tokenizer.convert_tokens_to_string([token]).strip()
        if len(word) >= MIN_LETTERS and word.isalpha():
            candidates.setdefault(word, token_id)
    if not candidates:
        return []
    words = list(candidates)
    pieces = tokenizer(words, add_special_tokens=False)["input_ids"]
    return [(w, candidates[w]) for w, ids in zip(words, pieces) if len(ids) == 1]  # the word alone is one token


@lru_cache(maxsize=2)
def neighbour_table(model_path: str, *, name: str, k: int) -> NeighbourTable:
    """The neighbour table of `model_path`'s input embeddings; kept for the process, so tune trials reuse it."""
    from tuneforge.models.loading import load_encoder, load_tokenizer

    tokenizer = load_tokenizer(model_path, name=name)
    matrix = load_encoder(model_path, name=name).get_input_embeddings().weight.detach().float().numpy()
    vocab = [(w, i) for w, i in whole_words(tokenizer) if i < len(matrix)]
    return NeighbourTable(words=[w for w, _ in vocab], vectors=matrix[np.array([i for _, i in vocab], dtype=np.int64)], k=k)
