"""Mean pooling inside a Hugging Face sequence classifier, so a fine-tuned model reads the same
sentence vector as the frozen-encoder `head` method (and sentence-transformers) do.

BERT-style classifiers put their head on a pooler (dense + tanh over the first
token) that sentence encoders such as all-MiniLM-L6-v2 were never trained to
use. A forward hook on the encoder replaces the pooler's output with the
attention-masked mean of the last hidden states; the pooler itself is removed
(it would otherwise hold parameters that receive no gradient, which DDP
refuses). Saved models record `extra["pooling"] = "mean"`, and loading applies
the hook again. Hooks trace into ONNX like any other operation.
"""

from __future__ import annotations

import torch

from tuneforge.models.encode import mean_pool

MEAN = "mean"


def _mean_instead_of_pooler(module, args, kwargs, output):
    mask = kwargs.get("attention_mask")
    hidden = output[0]
    if mask is None:
        mask = torch.ones(hidden.shape[:2], dtype=hidden.dtype, device=hidden.device)
    output["pooler_output"] = mean_pool(hidden, mask)
    return output


def use_mean_pooling(model) -> bool:
    """Switch a BERT-style classifier to mean pooling; False (model unchanged) when its encoder has no pooler to replace."""
    encoder = getattr(model, "base_model", None)
    if encoder is None or not hasattr(encoder, "pooler"):
        return False
    if getattr(encoder, "_tuneforge_mean_pooling", False):
        return True
    encoder.pooler = None
    encoder.register_forward_hook(_mean_instead_of_pooler, with_kwargs=True)
    encoder._tuneforge_mean_pooling = True
    return True


def apply_saved_pooling(model, meta):
    """Re-apply the pooling a saved model was trained with."""
    if meta.extra.get("pooling") == MEAN:
        use_mean_pooling(model)
    return model
