"""Batched forward passes over text: length-sorted, dynamically padded, in original order.

Sorting by token length before batching means each batch pads only to its own
longest text, which on CPU cuts the work of mixed-length inputs severalfold.
Also here: sentence embeddings (`embed_texts`), shared by the `head` method,
its predictions and any later retrieval, and the activations tasks apply.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


def pool(hidden: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    return hidden[:, 0] if how == "cls" else mean_pool(hidden, mask)


@torch.inference_mode()
def forward_sorted(
    forward: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    tokenizer,
    texts: Sequence[str],
    *,
    max_length: int,
    batch_size: int,
    device: torch.device | str = "cpu",
    progress: str | None = None,
    tensors: str = "pt",
) -> np.ndarray:
    """Run `forward` over `texts` in length-sorted batches; rows come back in input order.

    `tensors="np"` hands `forward` int64 numpy arrays (for ONNX Runtime) instead of torch tensors.
    """
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
    ids = encoded["input_ids"]
    order = np.argsort([len(x) for x in ids], kind="stable")[::-1]
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
    outputs: list[np.ndarray] = [None] * len(texts)  # type: ignore[list-item]
    starts = range(0, len(order), batch_size)
    bar = tqdm(starts, desc=progress, unit="batch", disable=progress is None, leave=False)
    for start in bar:
        chunk = order[start : start + batch_size]
        batch = tokenizer.pad([{k: encoded[k][i] for k in keys} for i in chunk], return_tensors=tensors)
        if tensors == "pt":
            batch = {k: v.to(device) for k, v in batch.items()}
            result = forward(batch).float().cpu().numpy()
        else:
            result = np.asarray(forward({k: np.asarray(v, dtype=np.int64) for k, v in batch.items()}), dtype=np.float32)
        for row, index in zip(result, chunk):
            outputs[index] = row
    return np.stack(outputs)


def classifier_logits(
    model, tokenizer, texts: Sequence[str], *, max_length: int, batch_size: int, progress: str | None = None
) -> np.ndarray:
    """Logits of a sequence classifier over `texts`, in input order."""
    model.eval()
    return forward_sorted(lambda b: model(**b).logits, tokenizer, texts, max_length=max_length, batch_size=batch_size, progress=progress)


def embed_texts(encoder, tokenizer, texts, *, max_length: int, batch_size: int, pooling: str, progress: str | None = None) -> np.ndarray:
    """One pooled vector per text from a bare encoder (`AutoModel`)."""

    def forward(batch):
        hidden = encoder(**batch).last_hidden_state
        return pool(hidden, batch["attention_mask"], pooling)

    return forward_sorted(forward, tokenizer, texts, max_length=max_length, batch_size=batch_size, progress=progress)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.clip(logits, -60, 60)))).astype(np.float32)


def linear_head_weights(coef: np.ndarray, intercept: np.ndarray, *, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """A fitted linear model as (weight[C, D], bias[C]) for softmax scoring.

    Binary models keep one row; it becomes [0, w] so softmax reproduces the sigmoid.
    """
    # C order: sklearn may hand back a Fortran-ordered view, and safetensors writes raw memory.
    weight = np.ascontiguousarray(coef, dtype=np.float32)
    bias = np.ascontiguousarray(intercept, dtype=np.float32)
    if n_labels == 2 and weight.shape[0] == 1:
        weight = np.ascontiguousarray(np.vstack([np.zeros_like(weight), weight]))
        bias = np.concatenate([np.zeros(1, dtype=np.float32), bias])
    return weight, bias
