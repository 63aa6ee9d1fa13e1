"""Held-out loss and perplexity of a language model: the mean loss per scored token, and its exponential.

Scored tokens are the masked ones (masked LM) or every next token (causal LM);
batches are weighted by how many tokens they score, so the figure does not depend
on the batch size.
"""

from __future__ import annotations

import math

from tqdm.auto import tqdm

from tuneforge.tasks.lm.blocks import IGNORE, BlockSettings, LanguageModelCollator, held_out_examples

# Tokens per scoring batch: a language model's logits are tokens x vocabulary floats (2,048 x 49,152 x 4 bytes = 400 MB).
TOKENS_PER_BATCH = 2048


def scoring_batch_size(settings: BlockSettings, requested: int) -> int:
    """Blocks per forward pass when scoring: at most `requested`, and at most TOKENS_PER_BATCH tokens."""
    return max(1, min(requested, TOKENS_PER_BATCH // settings.block_size))


def scored_tokens(labels, objective: str) -> int:
    """How many positions the model's loss averages over (causal LMs predict token t+1 from position t)."""
    if objective == "clm":
        labels = labels[:, 1:]
    return int((labels != IGNORE).sum())


def held_out_loss(model, tokenizer, texts: list[str], settings: BlockSettings, *, batch_size: int = 8, progress: str | None = None) -> dict:
    """{"loss", "perplexity", "tokens", "blocks"} of `model` on `texts`, built into blocks as `settings` say."""
    import torch

    examples = held_out_examples(tokenizer, texts, settings)
    collate = LanguageModelCollator(tokenizer, settings)
    total, tokens = 0.0, 0
    was_training = model.training
    model.eval()
    starts = range(0, len(examples), batch_size)
    with torch.no_grad():
        for start in tqdm(starts, desc=progress, unit="batch", disable=progress is None, leave=False):
            batch = collate(examples[start : start + batch_size])
            n = scored_tokens(batch["labels"], settings.objective)
            if n == 0:
                continue
            device = next(model.parameters()).device
            loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
            total += float(loss) * n
            tokens += n
    if was_training:
        model.train()
    loss = total / tokens if tokens else float("nan")
    return {
        "loss": round(loss, 6),
        "perplexity": round(math.exp(loss), 4) if tokens else float("nan"),
        "tokens": tokens,
        "blocks": len(examples),
    }
