"""The main-process gate and what every rank must agree on under `torchrun`.

Only rank 0 creates the run folder and writes run.json, evaluation, the card
and the cost; the others learn its path from it. Ranks come from the launcher's
environment (`RANK`, `WORLD_SIZE`), so the gate works before any process group
exists; sharing a value uses the process group that Accelerate (inside the
Trainer) sets up — gloo on CPU, NCCL on GPU — initialising it first if needed.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tuneforge.errors import ConfigError, RunError

T = TypeVar("T")
DISTRIBUTED_METHODS = ("full", "lora")  # the Trainer-based ones; head, tfidf and task-own trainers are single-process


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    return rank() == 0


def restart_count() -> int:
    """How many times torchrun has restarted the group (0 on the first attempt, and outside torchrun)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))


def share_cores() -> None:
    """Split this node's cores between its processes when the launcher did not say (torchrun and --nproc do)."""
    if world_size() <= 1 or "OMP_NUM_THREADS" in os.environ:
        return
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", world_size()))))


def _process_group():
    import torch.distributed as dist

    if not dist.is_initialized():
        from accelerate import PartialState

        _init_process_group(dist)
        PartialState()  # Accelerate (and the Trainer) adopt the group; each process takes its own GPU
    return dist


def _init_process_group(dist) -> None:
    """The group the launcher described (gloo on CPU, NCCL on GPU), its store keys namespaced by torchrun attempt.

    torchrun's agent keeps one store across restarts; without the namespace a restarted rank can read the
    address a dead process of the previous attempt published and fail to connect ("Connection refused")."""
    import torch
    from torch.distributed.rendezvous import rendezvous

    store, group_rank, size = next(rendezvous("env://"))
    store = dist.PrefixStore(f"tuneforge/attempt-{restart_count()}/", store)
    dist.init_process_group("cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo", store=store, rank=group_rank, world_size=size)


def share_from_main(value: T | None) -> T:
    """Rank 0's `value` on every rank (a no-op in a single process)."""
    if world_size() <= 1:
        return value  # type: ignore[return-value]
    box: list[Any] = [value if is_main_process() else None]
    _process_group().broadcast_object_list(box, src=0)
    return box[0]


def check_same_on_every_rank(value: str, *, what: str) -> None:
    """Raise on every rank when the ranks disagree on `value` (e.g. a hash of the data split)."""
    if world_size() <= 1:
        return
    seen: list[Any] = [None] * world_size()
    _process_group().all_gather_object(seen, value)
    differing = [r for r, v in enumerate(seen) if v != seen[0]]
    if differing:
        raise RunError(
            f"{what} differs between processes (rank 0 vs rank(s) {differing}); every rank must read the same files "
            "with the same seed — check that all nodes see the same data path and tuneforge version"
        )


def sum_over_ranks(values: list[float]) -> list[float]:
    """Element-wise sum of `values` over all ranks (the values themselves in a single process)."""
    if world_size() <= 1:
        return list(values)
    totals: list[Any] = [None] * world_size()
    _process_group().all_gather_object(totals, list(values))
    return [sum(column) for column in zip(*totals)]


def backend() -> str | None:
    """The process group's backend (gloo, nccl), or None in a single process."""
    if world_size() <= 1:
        return None
    dist = _process_group()
    name = str(dist.get_backend())
    if name == "undefined":  # a group made with per-device backends reports them only in its config: "cpu:gloo"
        name = ",".join(part.split(":")[-1] for part in str(dist.get_backend_config()).split(","))
    return name


def frames_digest(frames: dict) -> str:
    """A fingerprint of the prepared splits: which rows, in which order, in which split.

    Cells may be lists (multilabel labels, entity spans), which pandas' row hashing cannot take,
    so each frame is hashed as its JSON."""
    digest = hashlib.sha256()
    for name, frame in sorted(frames.items()):
        digest.update(name.encode())
        digest.update(frame.to_json(orient="split", date_format="iso", default_handler=str).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class BatchPlan:
    """How one optimiser step of `global_batch` examples is split: per-device batch x accumulation x processes."""

    per_device: int
    accumulation: int
    world_size: int

    @property
    def global_batch(self) -> int:
        return self.per_device * self.accumulation * self.world_size


def plan_batches(batch_size: int, accumulation: int, processes: int) -> BatchPlan:
    """Keep `batch_size x accumulation` examples per optimiser step on any number of processes.

    The per-device batch never exceeds `batch_size` (the memory the config planned for), with the fewest
    accumulation steps that reach it; one process gets exactly the config's values.
    """
    total = batch_size * accumulation
    if total % processes:
        raise ConfigError(
            f"train.batch_size x train.gradient_accumulation_steps = {total} examples per step cannot be split evenly "
            f"over {processes} processes; make it a multiple of {processes}"
        )
    per_rank = total // processes
    steps = next(a for a in range(1, per_rank + 1) if per_rank % a == 0 and per_rank // a <= batch_size)
    return BatchPlan(per_device=per_rank // steps, accumulation=steps, world_size=processes)


def distributed_problem(method: str, *, own_trainer: bool) -> str | None:
    """Why a method cannot train under several processes, or None when it can."""
    if method in DISTRIBUTED_METHODS and not own_trainer:
        return None
    return (
        f"train.method={method} trains in a single process; run it without torchrun / --nproc "
        f"(more than one process helps only {' and '.join(DISTRIBUTED_METHODS)})"
    )


def log_to_run_folder(logs_dir: Path) -> None:
    """On ranks other than 0, send all logging and printing to `logs_dir/rank<N>.log` instead of the console.

    Printing too: the Trainer prints its log lines on the first process of every node. Standard error stays on
    the console, so a failing rank's error still shows where torchrun was started."""
    if is_main_process():
        return
    import sys

    logs_dir.mkdir(parents=True, exist_ok=True)
    path = logs_dir / f"rank{rank()}.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    sys.stdout = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives as long as the process


def quiet_console_on_other_ranks() -> None:
    """Before the run folder is known, ranks other than 0 show warnings only (rank 0 tells the story)."""
    if is_main_process():
        return
    for handler in logging.getLogger().handlers:
        handler.setLevel(max(handler.level, logging.WARNING))
