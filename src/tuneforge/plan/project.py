"""GPU projections of a transformer method's plan: time, memory fit and cost per GPU type. Not measured.

Time: the plan's compute parts (training steps, evaluations, embeddings,
predictions) are counted in floating-point operations from the simulated
batches (2 x non-embedding parameters per token forward, 6 x for a full
training step, 4 x for LoRA, whose frozen weights get no gradient; plus the
attention's 4 x layers x hidden x length per token, forward). On a GPU each
part takes those operations at `efficiency` x its dense peak plus a fixed
overhead per batch; the host parts (start-up, reading, tokenising, loading,
writing) stay what this machine takes. Dividing the same operations by the
measured seconds gives this machine's effective rate, so the speed-up reported
is the ratio of the two effective throughputs.

Memory: fp32 weights + their bf16 autocast copies, gradients and AdamW's two
moments for what trains, activations of the largest training batch (16-bit,
Korthikanti et al. 2022: 34 + 5 x heads x length / hidden bytes per token,
layer and hidden unit), and the `reserved_gb` the CUDA context keeps.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tuneforge.plan.gpus import GpuTable

LABEL = "projection, not measured"
LINEAR_FLOPS = {"forward": 2, "full": 6, "lora": 4}  # per non-embedding parameter and token
ATTENTION_FACTOR = {"forward": 1, "full": 3, "lora": 3}  # the attention has no weights: its backward is 2x its forward


@dataclass(frozen=True)
class ModelShape:
    params: int  # every parameter (memory)
    dense_params: int  # parameters of the matrix products (not embedding lookups): the arithmetic
    layers: int
    hidden: int
    heads: int


def model_shape(model_path: str) -> ModelShape:
    """Parameter counts from the safetensors headers (no weights loaded) and the layer shape from config.json."""
    folder = Path(model_path)
    params = dense = 0
    for file in sorted(folder.glob("*.safetensors")):
        with open(file, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(size))
        for name, info in header.items():
            if name == "__metadata__":
                continue
            count = int(np.prod(info["shape"])) if info["shape"] else 1
            params += count
            dense += 0 if "embed" in name else count
    config = json.loads((folder / "config.json").read_text(encoding="utf-8")) if (folder / "config.json").is_file() else {}
    get = lambda *keys: next((int(config[k]) for k in keys if k in config), 0)  # noqa: E731
    return ModelShape(
        params=params,
        dense_params=dense,
        layers=get("num_hidden_layers", "n_layers", "num_layers"),
        hidden=get("hidden_size", "dim", "d_model"),
        heads=get("num_attention_heads", "n_heads"),
    )


def batch_work(batch_lengths: np.ndarray, batch_size: int, scale: float, *, kind: str) -> dict:
    """What a series of batches computes: batch count, token positions (sum of B x L) and sum of B x L^2, scaled."""
    lengths = np.asarray(batch_lengths, dtype=np.float64)
    return {
        "kind": kind,
        "batches": float(len(lengths) * scale),
        "positions": float((lengths * batch_size).sum() * scale),
        "positions_sq": float((lengths**2 * batch_size).sum() * scale),
    }


def part_flops(work: dict, shape: ModelShape, method: str) -> float:
    key = method if work["kind"] == "train" else "forward"
    linear = LINEAR_FLOPS[key] * shape.dense_params * work["positions"]
    attention = ATTENTION_FACTOR[key] * 4 * shape.layers * shape.hidden * work["positions_sq"]
    return linear + attention


def gpu_memory_gb(shape: ModelShape, method: str, *, batch_size: int, eval_batch_size: int, max_length: int, trainable: int) -> float:
    """Peak GPU memory of the method's run, in GB, without the CUDA context."""
    weights = shape.params * (4 + 2)  # fp32 master weights and their bf16 copies under autocast
    if method == "head":
        training, batch = 0, 0
    else:
        training = (shape.params if method == "full" else trainable) * (4 + 8)  # gradients and AdamW's two moments
        batch = batch_size
    per_token_layer = shape.hidden * (34 + 5 * shape.heads * max_length / max(shape.hidden, 1))
    activations = shape.layers * batch * max_length * per_token_layer
    evaluation = eval_batch_size * max_length * per_token_layer  # no gradients: one layer's activations at a time
    return (weights + training + max(activations, evaluation)) / 1e9


def project(plan, shape: ModelShape, table: GpuTable, *, memory_gb: float, budget_s: float | None = None) -> list[dict]:
    """One projection per GPU type of `table` for a transformer `plan` (its `compute` parts and `breakdown`)."""
    flops = {part: part_flops(work, shape, plan.method) for part, work in plan.compute.items()}
    host_seconds = sum(v for k, v in plan.breakdown.items() if k not in plan.compute)
    here_seconds = sum(plan.breakdown[k] for k in plan.compute)
    here_tflops = sum(flops.values()) / max(here_seconds, 1e-9) / 1e12
    need_gb = memory_gb + table.reserved_gb
    out = []
    for gpu in table.gpus:
        rate = gpu.tflops * 1e12 * table.efficiency
        compute = sum(
            flops[part] / rate
            + work["batches"] * (table.train_step_overhead_ms if work["kind"] == "train" else table.forward_overhead_ms) / 1e3
            for part, work in plan.compute.items()
        )
        seconds = host_seconds + compute
        out.append(
            {
                "gpu": gpu.name,
                "wall_seconds": round(seconds, 1),
                "compute_seconds": round(compute, 2),
                "compute_speedup": round(here_seconds / max(compute, 1e-9), 1),
                "effective_tflops": round(gpu.tflops * table.efficiency, 2),
                "this_machine_tflops": round(here_tflops, 4),
                "usd_per_hour": gpu.usd_per_hour,
                "cost_usd": round(seconds / 3600 * gpu.usd_per_hour, 4),
                "memory_gb": round(need_gb, 2),
                "fits_memory": need_gb <= gpu.memory_gb,
                "fits_budget": None if budget_s is None else seconds <= budget_s,
            }
        )
    return out
