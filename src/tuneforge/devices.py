"""Which device trains and in what arithmetic: asked by the engine that trains and by the planner that predicts it."""

from __future__ import annotations


def training_precision(requested: str = "auto", device: str | None = None) -> str:
    """`train.precision` resolved for `device`: bf16 where it is native (about 2x faster training steps on this
    project's AVX512-BF16 CPUs, docs/tasks.md), fp16 on GPUs without bf16, else fp32. An explicit choice the device
    cannot run is an error, not a silent fallback."""
    from tuneforge.errors import ConfigError

    device = device or training_device()
    native_bf16 = has_native_bf16(device)
    if requested == "auto":
        return "bf16" if native_bf16 else ("fp16" if device == "cuda" else "fp32")
    if requested == "fp16" and device != "cuda":
        raise ConfigError(f"train.precision=fp16 needs a CUDA GPU (this run trains on {device}); use bf16 or auto")
    if requested == "bf16" and not native_bf16:
        raise ConfigError(f"train.precision=bf16: this {device} has no native bfloat16 arithmetic; use auto or fp32")
    return requested


def training_device() -> str:
    """Where the Trainer trains: CUDA when present, else Apple's MPS, else the CPU."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    return "mps" if torch.backends.mps.is_available() else "cpu"


def has_native_bf16(device: str = "cpu") -> bool:
    """Whether `device` computes bfloat16 natively (CPUs with AVX512-BF16 or AMX, CUDA GPUs from Ampere on)."""
    import torch

    if device == "cuda":
        return torch.cuda.is_bf16_supported()
    return device == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()
