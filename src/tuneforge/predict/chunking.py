"""Long texts: count the model windows a text needs, or cut it into overlapping windows.

`long_texts="truncate"` scores the first window only (the fast default);
`"chunk"` scores every window and averages their probabilities, so the end of a
long document counts as much as its start. Windows are cut at token
boundaries but returned as exact substrings of the text (from the tokenizer's
offsets), so every backend, PyTorch or ONNX, scores them unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

LONG_TEXT_MODES = ("truncate", "chunk")
OVERLAP = 0.25  # share of a window repeated in the next one, so no sentence is only ever seen cut in half


def window_tokens(tokenizer, max_length: int) -> int:
    """Text tokens that fit in one window next to the special tokens."""
    return max(1, max_length - tokenizer.num_special_tokens_to_add(pair=False))


def _size_and_step(tokenizer, max_length: int) -> tuple[int, int]:
    size = window_tokens(tokenizer, max_length)
    return size, max(1, int(size * (1 - OVERLAP)))


def window_counts(tokenizer, texts: Sequence[str], *, max_length: int) -> list[int]:
    """How many windows each text needs: 1 when it fits, more when truncation would cut it."""
    size, step = _size_and_step(tokenizer, max_length)
    lengths = [len(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]
    return [1 if n <= size else 1 + -(-(n - size) // step) for n in lengths]


def split_windows(tokenizer, texts: Sequence[str], *, max_length: int) -> tuple[list[str], np.ndarray]:
    """Every text as its windows; returns (window texts, index of the text each came from)."""
    size, step = _size_and_step(tokenizer, max_length)
    encoded = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True)
    pieces: list[str] = []
    owners: list[int] = []
    for index, (text, offsets) in enumerate(zip(texts, encoded["offset_mapping"])):
        if len(offsets) <= size:
            pieces.append(text)
            owners.append(index)
            continue
        for start in range(0, len(offsets) - size + step, step):
            end = min(start + size, len(offsets))
            pieces.append(text[offsets[start][0] : offsets[end - 1][1]])
            owners.append(index)
            if end == len(offsets):
                break
    return pieces, np.asarray(owners)


def average_by_owner(probs: np.ndarray, owners: np.ndarray, n_texts: int) -> np.ndarray:
    """Mean probability over each text's windows."""
    sums = np.zeros((n_texts, probs.shape[1]), dtype=np.float64)
    np.add.at(sums, owners, probs)
    counts = np.bincount(owners, minlength=n_texts)[:, None]
    return (sums / counts).astype(probs.dtype)
