"""Structural edits of a BERT-style classifier: drop whole layers, drop attention heads.

Dropped layers fit the Hugging Face config (`num_hidden_layers`), so such a model
reloads with `from_pretrained`. Dropped heads do not: BERT-style configs hold one
head count for every layer, so the per-layer map is kept in `tuneforge.json`
(`extra["pruned_heads"]`) and re-applied by `load_classifier_dir` before the
weights are read.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from tuneforge.errors import TuneforgeError
from tuneforge.models.artifact import ModelMeta


class UnsupportedArchitectureError(TuneforgeError, ValueError):
    """The model does not have the BERT-style layout that layer and head surgery needs."""


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The transformer blocks of `model` (BERT, RoBERTa, XLM-R, ELECTRA, MiniLM...)."""
    encoder = getattr(model.base_model, "encoder", None)
    layers = getattr(encoder, "layer", None)
    if not isinstance(layers, nn.ModuleList):
        raise UnsupportedArchitectureError(
            f"{type(model).__name__}: layer and head pruning need a BERT-style encoder (base_model.encoder.layer)"
        )
    return layers


def keep_layers(model: nn.Module, keep: list[int]) -> nn.Module:
    """Keep only the blocks at indices `keep` (in order); the config follows."""
    layers = encoder_layers(model)
    if not keep or sorted(set(keep)) != sorted(keep) or not all(0 <= i < len(layers) for i in keep):
        raise ValueError(f"layers to keep must be distinct indices in [0, {len(layers)}), got {keep}")
    model.base_model.encoder.layer = nn.ModuleList(layers[i] for i in sorted(keep))
    model.config.num_hidden_layers = len(keep)
    return model


def spread_layers(total: int, keep: int) -> list[int]:
    """`keep` evenly spread indices out of `total`, first and last included (the DistilBERT recipe, roughly)."""
    if not 1 <= keep <= total:
        raise ValueError(f"cannot keep {keep} of {total} layers")
    if keep == 1:
        return [total - 1]
    return sorted({round(i * (total - 1) / (keep - 1)) for i in range(keep)})


def attention_parts(layer: nn.Module) -> tuple[nn.Module, nn.Linear]:
    """(self-attention module with query/key/value, output projection) of one block."""
    attention = getattr(layer, "attention", None)
    self_attention = getattr(attention, "self", None)
    output = getattr(getattr(attention, "output", None), "dense", None)
    if not all(isinstance(getattr(self_attention, n, None), nn.Linear) for n in ("query", "key", "value")) or not isinstance(
        output, nn.Linear
    ):
        raise UnsupportedArchitectureError(
            f"{type(layer).__name__}: head pruning needs attention.self.query/key/value and attention.output.dense"
        )
    return self_attention, output


def _keep_rows(linear: nn.Linear, index: torch.Tensor) -> nn.Linear:
    new = nn.Linear(linear.in_features, len(index), bias=linear.bias is not None)
    new.weight.data = linear.weight.data[index].clone()
    if linear.bias is not None:
        new.bias.data = linear.bias.data[index].clone()
    return new


def _keep_columns(linear: nn.Linear, index: torch.Tensor) -> nn.Linear:
    new = nn.Linear(len(index), linear.out_features, bias=linear.bias is not None)
    new.weight.data = linear.weight.data[:, index].clone()
    if linear.bias is not None:
        new.bias.data = linear.bias.data.clone()
    return new


def prune_heads(model: nn.Module, heads: dict[int, list[int]]) -> nn.Module:
    """Remove attention heads `{layer: [head, ...]}` by slicing the projections; every layer keeps one head at least."""
    layers = encoder_layers(model)
    for layer_index, drop in heads.items():
        layer_index = int(layer_index)
        self_attention, output = attention_parts(layers[layer_index])
        size, count = self_attention.attention_head_size, self_attention.num_attention_heads
        drop = sorted({int(h) for h in drop})
        if not drop:
            continue
        if any(not 0 <= h < count for h in drop) or len(drop) >= count:
            raise ValueError(f"layer {layer_index}: cannot drop heads {drop} of {count}")
        kept = [h for h in range(count) if h not in drop]
        index = torch.cat([torch.arange(h * size, (h + 1) * size) for h in kept])
        for name in ("query", "key", "value"):
            setattr(self_attention, name, _keep_rows(getattr(self_attention, name), index))
        layers[layer_index].attention.output.dense = _keep_columns(output, index)
        self_attention.num_attention_heads = len(kept)
        self_attention.all_head_size = len(kept) * size
    return model


def head_counts(model: nn.Module) -> list[int]:
    return [attention_parts(layer)[0].num_attention_heads for layer in encoder_layers(model)]


def load_classifier_dir(folder: Path, meta: ModelMeta | None = None, **kwargs) -> nn.Module:
    """A saved sequence classifier, with any pruned heads rebuilt before its weights load."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from tuneforge.models.pooling import apply_saved_pooling

    meta = meta or ModelMeta.read(folder)
    pruned = meta.extra.get("pruned_heads")
    if not pruned:
        return apply_saved_pooling(AutoModelForSequenceClassification.from_pretrained(folder, use_safetensors=True, **kwargs), meta)
    from safetensors.torch import load_file

    model = apply_saved_pooling(AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(folder), **kwargs), meta)
    prune_heads(model, {int(k): v for k, v in pruned.items()})
    model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=True)
    return model.eval()
