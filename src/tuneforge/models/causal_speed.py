"""Faster CPU decoding of a causal LM where it costs no answer quality (measured in benchmarks/chat_speed.py).

Decoding one token at batch 1 reads every weight once, so on a CPU it is bound by
memory traffic, not arithmetic. The `int8` recipe cuts that traffic only where the
answers stay the same:

- the MLP's gate and up projections (about two thirds of a Llama decoder's weights) get
  int8 weights with one scale per output channel (PyTorch dynamic quantization);
- the output layer (49,152 x 576 in SmolLM2, a fifth of all weights) runs in bfloat16 when
  the CPU has native bf16 instructions, untied from the input embedding, which stays fp32;
- the attention projections and the MLP's down projection stay fp32. Quantizing them too
  (plain `quantize_dynamic` of every Linear) was 1.6x faster but changed most answers and
  cut answer F1 from 0.24 to 0.05: the down projection's inputs carry large outliers.

`static_cache_kwargs` adds a preallocated KV cache to `generate` (no growing
concatenation per token; identical outputs) for models that support it.
"""

from __future__ import annotations

import logging
import warnings

import torch

from tuneforge.devices import has_native_bf16
from tuneforge.errors import ConfigError

logger = logging.getLogger(__name__)

RECIPES = ("int8",)
INT8_PROJECTIONS = ("gate_proj", "up_proj")  # Llama, Mistral, Qwen2, SmolLM, Gemma: the MLP's input projections


def speed_up(model, recipe: str) -> dict:
    """Apply `recipe` to `model` in place (CPU inference only); returns what was changed, for the run's records."""
    if recipe not in RECIPES:
        raise ConfigError(f"quantize: one of {', '.join(RECIPES)}; got {recipe!r}")
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    model.eval()
    names = [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in INT8_PROJECTIONS
    ]
    if names:
        with warnings.catch_warnings():  # torch.ao's quantized tensors are deprecated upstream (torchao succeeds them)
            warnings.filterwarnings("ignore", message=".*quantize_per_channel.*deprecated", category=UserWarning)
            quantize_dynamic(model, dict.fromkeys(names, per_channel_dynamic_qconfig), dtype=torch.qint8, inplace=True)
    else:
        logger.warning("int8: %s has no %s layers; only the output layer is changed", type(model).__name__, "/".join(INT8_PROJECTIONS))
    head = _bf16_output_layer(model)
    return {"recipe": recipe, "int8_layers": len(names), "int8_projections": list(INT8_PROJECTIONS), "output_layer": head}


def _bf16_output_layer(model) -> str:
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if not isinstance(head, torch.nn.Linear):
        return "unchanged (not a Linear layer)"
    if not has_native_bf16("cpu"):
        return "fp32 (this CPU has no native bfloat16)"
    model.set_output_embeddings(BFloat16Linear(head))  # a new weight: the input embedding it was tied to stays fp32
    model.config.tie_word_embeddings = False
    return "bfloat16"


class BFloat16Linear(torch.nn.Module):
    """A Linear layer computed in bfloat16 that takes and returns the caller's dtype."""

    def __init__(self, linear):
        super().__init__()
        self.weight = torch.nn.Parameter(linear.weight.detach().to(torch.bfloat16).clone(), requires_grad=False)
        self.bias = None if linear.bias is None else torch.nn.Parameter(linear.bias.detach().clone(), requires_grad=False)
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x):
        out = torch.nn.functional.linear(x.to(torch.bfloat16), self.weight).to(x.dtype)
        return out if self.bias is None else out + self.bias


def static_cache_kwargs(model) -> dict:
    """`generate` arguments for a preallocated KV cache, when the model's class supports one."""
    return {"cache_implementation": "static"} if getattr(model, "_can_compile_fullgraph", False) else {}
