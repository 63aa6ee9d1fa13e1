"""`train.compile`: what torch.compile costs (the first steps' compilation) and a failure that names the setting.

The Trainer compiles the model itself (`TrainingArguments.torch_compile`, through
Accelerate) and saves the uncompiled module, so weights keep their plain names.
Compilation happens inside the first steps, so a `StepTimer` keeps the first
step's time apart from the typical one: their difference is the warm-up.
"""

from __future__ import annotations

import contextlib
import statistics
import time

from transformers import TrainerCallback

from tuneforge.errors import ConfigError


class StepTimer(TrainerCallback):
    """Wall seconds of every training step of this process (evaluations fall between steps, not inside them)."""

    def __init__(self):
        self.seconds: list[float] = []
        self._started: float | None = None

    def on_step_begin(self, args, state, control, **kwargs):
        self._started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self._started is not None:
            self.seconds.append(time.perf_counter() - self._started)
            self._started = None

    def summary(self) -> dict:
        if not self.seconds:
            return {}
        return {"first_step_seconds": round(self.seconds[0], 3), "median_step_seconds": round(statistics.median(self.seconds), 4)}


@contextlib.contextmanager
def named_compile_failures(enabled: bool):
    """Turn torch.compile's own failures (dynamo, inductor, the C++ compiler) into an error naming `train.compile`."""
    if not enabled:
        yield
        return
    import torch._dynamo.exc
    import torch._inductor.exc

    failures = (torch._dynamo.exc.TorchDynamoException, torch._inductor.exc.InvalidCxxCompiler, torch._inductor.exc.CppCompileError)
    try:
        yield
    except failures as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"train.compile=true: torch.compile failed on this machine ({type(exc).__name__}: {first}); "
            "set train.compile=false to train without compiling (on CPU inductor needs a working C++ compiler)"
        ) from exc
