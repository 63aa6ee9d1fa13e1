"""Append every Trainer log (loss, learning rate, validation scores) to metrics.jsonl (main process only)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from transformers import TrainerCallback

logger = logging.getLogger(__name__)


class MetricsFileLogger(TrainerCallback):
    def __init__(self, path: Path):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and state.is_world_process_zero:
            append_metrics(self.path, {"step": state.global_step, "epoch": state.epoch, **logs})
        return control

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if metrics and state.is_world_process_zero:
            shown = {
                k.removeprefix("eval_"): round(v, 4) for k, v in metrics.items() if k in ("eval_accuracy", "eval_macro_f1", "eval_loss")
            }
            logger.info("step %d (epoch %.2f) validation: %s", state.global_step, state.epoch or 0, shown)
        return control


def append_metrics(path: Path, record: dict) -> None:
    # One line per event, flushed at once: a crash loses at most the line being written.
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"time": round(time.time(), 3), **record}, default=float) + "\n")


KILL_ENV = "TUNEFORGE_TEST_KILL_RANK_AT_STEP"


class KillRankAtStep(TrainerCallback):
    """Fault injection for the elastic-restart test: rank R kills itself (SIGKILL) after step S, on torchrun's
    first attempt only. Active only when TUNEFORGE_TEST_KILL_RANK_AT_STEP=R:S is set."""

    def __init__(self, rank: int, step: int):
        self.rank, self.step = rank, step

    def on_step_end(self, args, state, control, **kwargs):
        from tuneforge.engine.distributed import rank, restart_count

        if state.global_step == self.step and rank() == self.rank and restart_count() == 0:
            import os
            import signal

            logger.warning("%s: rank %d kills itself after step %d", KILL_ENV, self.rank, self.step)
            os.kill(os.getpid(), signal.SIGKILL)
        return control


def injected_faults() -> list[TrainerCallback]:
    import os

    spec = os.environ.get(KILL_ENV)
    if not spec:
        return []
    target, _, step = spec.partition(":")
    return [KillRankAtStep(int(target), int(step))]
