"""How fast training went and how much of it was padding: texts/s, tokens/s and the padded share.

Batches are padded to their longest text, so on short, uneven texts most of the
computed positions can be padding. `TokenCounter` wraps the training collator
(never the evaluation one) and counts real and padded positions of every batch
the model trains on; `summary` turns the counts into rates over the training
time with evaluation time taken out.
"""

from __future__ import annotations

from collections.abc import Callable


class TokenCounter:
    def __init__(self, collate: Callable):
        self.collate = collate
        self.texts = 0
        self.tokens = 0  # real (attention mask 1)
        self.positions = 0  # real + padding

    def __call__(self, features):
        batch = self.collate(features)
        mask = batch.get("attention_mask") if hasattr(batch, "get") else None
        if mask is not None:
            self.texts += int(mask.shape[0])
            self.tokens += int(mask.sum())
            self.positions += int(mask.numel())
        return batch

    def summary(self, train_seconds: float) -> dict:
        seconds = max(train_seconds, 1e-9)
        return {
            "train_texts_per_second": round(self.texts / seconds, 2),
            "train_tokens_per_second": round(self.tokens / seconds, 1),
            "padding_share": round(1 - self.tokens / self.positions, 4) if self.positions else None,
            "train_seconds": round(train_seconds, 2),
        }


def training_seconds(train_runtime: float, log_history: list[dict]) -> float:
    """The Trainer's train() time less the evaluations inside it."""
    return max(0.0, train_runtime - sum(e.get("eval_runtime", 0.0) for e in log_history))
