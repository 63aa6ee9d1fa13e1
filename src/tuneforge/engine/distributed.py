"""The main-process gate: under `torchrun` / `accelerate launch` only rank 0 creates the run
folder and writes run.json, evaluation, the card and the cost; the others learn its path from it.

Ranks come from the launcher's environment (`RANK`, `WORLD_SIZE`), so the gate
works before any process group exists; sharing a value uses the process group
that Accelerate (inside the Trainer) sets up, initialising it first if needed.
"""

from __future__ import annotations

import os
from typing import Any, TypeVar

T = TypeVar("T")


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    return rank() == 0


def share_from_main(value: T | None) -> T:
    """Rank 0's `value` on every rank (a no-op in a single process)."""
    if world_size() <= 1:
        return value  # type: ignore[return-value]
    import torch.distributed as dist

    if not dist.is_initialized():
        from accelerate import PartialState

        PartialState()  # initialises the process group the launcher described (gloo on CPU, nccl on GPU)
    box: list[Any] = [value if is_main_process() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]
