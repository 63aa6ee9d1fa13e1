"""What a run cost: wall time, CPU time, peak memory and an estimate in money."""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field

import psutil


@dataclass
class CostMeter:
    usd_per_hour: float
    _wall0: float = field(default_factory=time.perf_counter)
    _cpu0: float = field(default_factory=lambda: _cpu_seconds())

    def snapshot(self) -> dict:
        wall = time.perf_counter() - self._wall0
        gpu = _gpu_peak_mb()
        return {
            "wall_seconds": round(wall, 2),
            "cpu_seconds": round(_cpu_seconds() - self._cpu0, 2),
            "peak_rss_mb": round(_peak_rss_mb(), 1),
            "gpu_peak_mb": gpu,
            "device": "cuda" if gpu is not None else _cpu_or_mps(),
            "cpu_count": psutil.cpu_count(logical=True),
            "usd_per_hour": self.usd_per_hour,
            "estimated_cost_usd": round(wall / 3600 * self.usd_per_hour, 6),
        }


def _cpu_or_mps() -> str:
    from tuneforge.engine.args import training_device

    return "mps" if training_device() == "mps" else "cpu"


def _cpu_seconds() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS); it covers the process's whole life.
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _gpu_peak_mb() -> float | None:
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    return round(torch.cuda.max_memory_allocated() / 2**20, 1)
