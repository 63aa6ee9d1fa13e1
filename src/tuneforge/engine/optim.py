"""Per-group learning rates: the new task head learns at its own (larger) rate, the pretrained body
(or its LoRA adapters) at the run's; biases and norms are not weight-decayed, as in Trainer's default."""

from __future__ import annotations

import torch

HEAD_MODULES = ("classifier", "score")  # what transformers calls a task head


def is_head_parameter(name: str) -> bool:
    return any(part in HEAD_MODULES for part in name.split("."))


def parameter_groups(model, *, body_lr: float, head_lr: float, weight_decay: float, is_head=is_head_parameter) -> list[dict]:
    """`is_head(name)` says which parameters learn at `head_lr` (default: a task head's)."""
    groups: dict[tuple[bool, bool], list] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        decay = parameter.ndim >= 2 and "norm" not in name.lower()
        groups.setdefault((is_head(name), decay), []).append(parameter)
    return [
        {"params": params, "lr": head_lr if head else body_lr, "weight_decay": weight_decay if decay else 0.0}
        for (head, decay), params in sorted(groups.items())
    ]


def adamw(model, *, body_lr: float, head_lr: float, weight_decay: float, is_head=is_head_parameter) -> torch.optim.AdamW:
    groups = parameter_groups(model, body_lr=body_lr, head_lr=head_lr, weight_decay=weight_decay, is_head=is_head)
    return torch.optim.AdamW(groups, lr=body_lr)
