"""Smaller PyTorch models made from a run's model: a distilled student and two pruned ones.

Each builder writes an ordinary model folder (safetensors, tokenizer,
`tuneforge.json`) that `Predictor.load` opens, and returns what it did in
numbers. All three learn from the same teacher logits, computed once.

- distill: keep every other layer or so of the teacher, then distil.
- prune-heads: drop the least important attention heads (Michel et al., 2019:
  gradient of the loss with respect to a per-head gate), then recover by distilling.
- prune-magnitude: zero the smallest encoder weights (global L1), recover with
  the zeros held fixed. Dense CPU kernels multiply zeros as fast as anything
  else, so this saves neither time nor raw disk; only compressed size shrinks.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tuneforge.atomic import atomic_dir
from tuneforge.compress.distill import distill
from tuneforge.compress.settings import CompressSettings
from tuneforge.errors import ConfigError
from tuneforge.models.artifact import ModelMeta
from tuneforge.models.encode import classifier_logits
from tuneforge.models.surgery import (
    attention_parts,
    encoder_layers,
    head_counts,
    keep_layers,
    load_classifier_dir,
    prune_heads,
    spread_layers,
)
from tuneforge.tasks.base import label_index

logger = logging.getLogger(__name__)


@dataclass
class Teacher:
    """The run's model and its training split: what every student learns from."""

    model_dir: Path
    meta: ModelMeta
    texts: list[str]
    labels: list[str]
    settings: CompressSettings

    @cached_property
    def tokenizer(self):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.model_dir)

    def fresh_model(self) -> nn.Module:
        """A new copy of the teacher's weights to cut down."""
        return load_classifier_dir(self.model_dir, self.meta)

    @cached_property
    def label_ids(self) -> np.ndarray:
        index = label_index(self.meta.labels)
        return np.array([index[x] for x in self.labels])

    @cached_property
    def logits(self) -> np.ndarray:
        # computed once, shared by every student
        return classifier_logits(
            self.fresh_model(), self.tokenizer, self.texts, max_length=self.meta.max_length, batch_size=32, progress="teacher"
        )

    def distill_into(self, student: nn.Module, epochs: float) -> dict:
        """Train `student` in place on the teacher's logits and the true labels."""
        s = self.settings
        return distill(
            student,
            self.tokenizer,
            self.texts,
            self.label_ids,
            self.logits,
            epochs=epochs,
            learning_rate=s.learning_rate,
            batch_size=s.batch_size,
            temperature=s.temperature,
            alpha=s.alpha,
            max_length=self.meta.max_length,
            seed=s.seed,
        )

    def save(self, model: nn.Module, out_dir: Path, variant: str, **extra) -> None:
        with atomic_dir(out_dir) as tmp:
            model.save_pretrained(tmp, safe_serialization=True)
            self.tokenizer.save_pretrained(tmp)
            replace(self.meta, extra={**self.meta.extra, "variant": variant, **extra}).write(tmp)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build_distilled(teacher: Teacher, out_dir: Path) -> dict:
    model = teacher.fresh_model()
    total = len(encoder_layers(model))
    count = teacher.settings.student_layers or max(1, total // 2)
    if count >= total:
        raise ConfigError(f"compress.student_layers={count}: the teacher has {total} layers; a student needs fewer")
    kept = spread_layers(total, count)
    before = parameter_count(model)
    keep_layers(model, kept)
    logger.info("distill: student keeps teacher layers %s of %d", kept, total)
    trained = teacher.distill_into(model, teacher.settings.epochs)
    teacher.save(model, out_dir, "distill", teacher_layers_kept=kept)
    return {
        "layers": f"{count} of {total}",
        "params_m": round(parameter_count(model) / 1e6, 2),
        "params_share": round(parameter_count(model) / before, 3),
        **trained,
    }


def head_importance(model: nn.Module, teacher: Teacher) -> torch.Tensor:
    """|d loss / d gate| per head, summed over training texts and normalised per layer."""
    layers = encoder_layers(model)
    counts = head_counts(model)
    gates = torch.ones(len(layers), max(counts), requires_grad=True)
    hooks = []
    for i, layer in enumerate(layers):
        self_attention, output = attention_parts(layer)
        size = self_attention.attention_head_size

        def gate(module, args, i=i, size=size):
            (context,) = args
            shaped = context.view(*context.shape[:-1], -1, size) * gates[i, : context.shape[-1] // size, None]
            return (shaped.view(context.shape),)

        hooks.append(output.register_forward_pre_hook(gate))
    tokenizer, n = teacher.tokenizer, min(len(teacher.texts), teacher.settings.importance_texts)
    model.eval()
    try:
        for start in range(0, n, 16):
            batch = tokenizer(
                teacher.texts[start : min(n, start + 16)],
                truncation=True,
                max_length=teacher.meta.max_length,
                padding=True,
                return_tensors="pt",
            )
            loss = nn.functional.cross_entropy(model(**batch).logits, torch.as_tensor(teacher.label_ids[start : min(n, start + 16)]))
            loss.backward()
    finally:
        for hook in hooks:
            hook.remove()
        model.zero_grad(set_to_none=True)  # the scoring gradients must not leak into recovery training
    scores = gates.grad.abs()
    return scores / scores.norm(dim=1, keepdim=True).clamp(min=1e-12)


def heads_to_drop(importance: torch.Tensor, counts: list[int], fraction: float) -> dict[int, list[int]]:
    """The globally least important `fraction` of heads, never a layer's last one."""
    ranked = sorted((float(importance[layer, head]), layer, head) for layer, count in enumerate(counts) for head in range(count))
    target, left = int(round(fraction * sum(counts))), list(counts)
    drop: dict[int, list[int]] = {}
    for _, layer, head in ranked:
        if sum(len(v) for v in drop.values()) >= target:
            break
        if left[layer] > 1:
            drop.setdefault(layer, []).append(head)
            left[layer] -= 1
    return {layer: sorted(heads) for layer, heads in sorted(drop.items())}


def build_head_pruned(teacher: Teacher, out_dir: Path) -> dict:
    model = teacher.fresh_model()
    counts = head_counts(model)
    drop = heads_to_drop(head_importance(model, teacher), counts, teacher.settings.head_fraction)
    before = parameter_count(model)
    prune_heads(model, drop)
    removed = sum(len(v) for v in drop.values())
    logger.info("prune-heads: removed %d of %d heads: %s", removed, sum(counts), drop)
    trained = teacher.distill_into(model, teacher.settings.recover_epochs) if teacher.settings.recover_epochs else {}
    teacher.save(model, out_dir, "prune-heads", pruned_heads={str(k): v for k, v in drop.items()})
    return {
        "heads": f"{sum(counts) - removed} of {sum(counts)}",
        "params_m": round(parameter_count(model) / 1e6, 2),
        "params_share": round(parameter_count(model) / before, 3),
        **trained,
    }


def encoder_linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in encoder_layers(model).modules() if isinstance(m, nn.Linear)]


def build_magnitude_pruned(teacher: Teacher, out_dir: Path) -> dict:
    from torch.nn.utils import prune

    model = teacher.fresh_model()
    linears = encoder_linears(model)
    targets = [(linear, "weight") for linear in linears]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=teacher.settings.sparsity)
    # recovery trains with the masks in place, so the zeros stay zero
    trained = teacher.distill_into(model, teacher.settings.recover_epochs) if teacher.settings.recover_epochs else {}
    for linear, name in targets:
        prune.remove(linear, name)
    zeros = sum(int((linear.weight == 0).sum()) for linear in linears)
    pruned_total = sum(linear.weight.numel() for linear in linears)
    teacher.save(model, out_dir, "prune-magnitude")
    return {
        "sparsity_encoder_linear": round(zeros / pruned_total, 4),
        "sparsity_all_params": round(zeros / parameter_count(model), 4),
        "compressed_size_mb": round(compressed_size_mb(out_dir / "model.safetensors"), 2),
        "note": "zeros save no time on dense CPU kernels and no raw disk; only the compressed size shrinks",
        **trained,
    }


def compressed_size_mb(path: Path) -> float:
    """Size after zlib (what a zip or gzipped download of the weights would weigh)."""
    compressor, size = zlib.compressobj(6), 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            size += len(compressor.compress(chunk))
    return (size + len(compressor.flush())) / 2**20


STUDENTS = {"distill": build_distilled, "prune-heads": build_head_pruned, "prune-magnitude": build_magnitude_pruned}
FASTER_STUDENTS = ("distill", "prune-heads")  # worth exporting and quantizing too
