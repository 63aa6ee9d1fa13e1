"""`train.method: auto` with `train.budget`: the best run that fits a time budget, chosen from the plan.

The planner (`tuneforge.plan`) prices each method on this data and machine. Preference
follows quality on our benchmarks: `full` fine-tuning (which starts from, and is never
kept below, the frozen-encoder probe: the `head` method is its safety net), then
`head`, then `tfidf`, which always fits. `lora` is not a candidate: on CPU it costs about
what `full` costs per step and, in our benchmarks, reaches less. For `full`, the choice is:
`max_length` from the data (99th percentile of token lengths, rounded up to 8, never above
the config's), then as many epochs as fit (the config's, else up to 3, in half epochs), else
one epoch on a stratified subsample of the rows. Planning itself is paid from the budget,
and only 85 % of what remains is planned, for the planner's error. While training, a
deadline stops the run cleanly (a last evaluation and checkpoint, the best one kept) so
that what follows training still ends within the budget.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
from transformers import TrainerCallback

from tuneforge.errors import ConfigError

logger = logging.getLogger(__name__)
PLANNED_SHARE = 0.85
DEFAULT_MAX_EPOCHS = 3.0
MIN_ROWS_PER_LABEL = 8  # below this a subsampled fine-tune is not worth it: the head gets the budget instead


def choose_within_budget(config, *, started: float, progress=None):
    """(the config to train, the decision to record). `started`: time.monotonic() when the budget began."""
    from tuneforge.durations import parse_duration
    from tuneforge.models.registry import resolve_model
    from tuneforge.plan import make_plan
    from tuneforge.plan.estimate import PLANNED_TASKS, data_stats
    from tuneforge.tasks import get_task

    t = config.train
    if t.budget is None:
        raise ConfigError("invalid config:\n  train.budget: train.method=auto needs a time budget, e.g. train.budget=30m")
    task = get_task(config.task)
    if task.name not in PLANNED_TASKS:
        raise ConfigError(f"invalid config:\n  train.method: auto is available for tasks {', '.join(PLANNED_TASKS)}; task is {task.name!r}")
    budget = parse_duration(t.budget)
    stats = data_stats(config, task, resolve_model(config.model.name))
    max_length = _max_length_from_data(stats.lengths["train"], t.max_length)
    stats.lengths = {split: np.minimum(lengths, max_length) for split, lengths in stats.lengths.items()}
    epochs = t.epochs or DEFAULT_MAX_EPOCHS
    trial = config.with_overrides({"train": {"max_length": max_length, "epochs": epochs, "method": "full"}})
    plan = make_plan(trial, methods=["tfidf", "head", "full"], stats=stats, progress=progress)
    by_method = {m.method: m for m in plan.methods}
    spent = time.monotonic() - started
    target = (budget - spent) * PLANNED_SHARE
    decision = {
        "budget_seconds": budget,
        "planning_seconds": round(spent, 1),
        "planned_share": PLANNED_SHARE,
        "candidates": [{"method": m.method, "epochs": m.epochs, "predicted_seconds": m.wall_seconds} for m in plan.methods],
        "max_length": max_length,
    }
    chosen = _fit_full(by_method["full"], epochs, stats, target)
    if chosen is not None:
        fit_epochs, max_rows, seconds = chosen
        overrides = {"method": "full", "epochs": fit_epochs, "max_length": max_length}
        why = f"full fine-tuning fits: {fit_epochs:g} epoch(s) predicted {seconds:.0f} s of the {target:.0f} s planned"
        if max_rows is not None:
            why += f", on a stratified subsample of {max_rows} rows (all rows would not fit one epoch)"
        post_training = by_method["full"].breakdown["test_predictions"] + by_method["full"].breakdown["overhead"]
        decision["deadline_seconds"] = round(max(budget - post_training, 0.0), 1)
    elif by_method["head"].wall_seconds <= target and by_method["head"].fits_memory:
        overrides, max_rows, seconds = {"method": "head", "max_length": max_length}, None, by_method["head"].wall_seconds
        why = f"full fine-tuning does not fit even one epoch on a useful subsample; the frozen-encoder head is predicted {seconds:.0f} s"
    else:
        overrides, max_rows, seconds = {"method": "tfidf"}, None, by_method["tfidf"].wall_seconds
        why = f"no transformer method fits the {target:.0f} s planned; tfidf is predicted {seconds:.0f} s"
    decision.update({"chosen": {**overrides, "max_rows": max_rows}, "predicted_seconds": round(seconds, 1), "why": why})
    logger.info("method auto, budget %.0f s: %s", budget, why)
    data = {"max_rows": max_rows} if max_rows is not None else {}
    return config.with_overrides({"train": {**overrides, "budget": None}, "data": data}), decision


def _max_length_from_data(lengths: np.ndarray, cap: int) -> int:
    if len(lengths) == 0:
        return cap
    p99 = int(np.percentile(lengths, 99))
    return int(min(cap, max(16, math.ceil(p99 / 8) * 8)))


def _fit_full(full, epochs: float, stats, target: float):
    """(epochs, max_rows or None, predicted seconds) of the largest full run that fits `target`, or None."""
    parts = full.breakdown
    per_epoch = max((parts["training_steps"] + parts["validation_evaluations"]) / epochs, 1e-6)
    fixed = parts["read_and_split"] + parts["load_model"] + parts["overhead"] + parts.get("tokenize", 0.0) + parts.get("startup", 0.0)
    scaled = parts.get("probe_embeddings", 0.0) + parts["test_predictions"]  # grows with rows, not with epochs
    if not full.fits_memory:
        return None
    room = target - fixed - scaled
    if room >= per_epoch:
        fit = min(epochs, math.floor(room / per_epoch * 2) / 2)
        return fit, None, fixed + scaled + fit * per_epoch
    share = (target - fixed) / (scaled + per_epoch)  # one epoch on a share of the rows (every split shrinks alike)
    rows = int(share * sum(stats.rows.values()))
    if share <= 0 or rows < MIN_ROWS_PER_LABEL * max(stats.labels, 2) / 0.6:  # ~60 % of the rows are training rows
        return None
    return 1.0, rows, fixed + share * (scaled + per_epoch)


class DeadlineCallback(TrainerCallback):
    """Stop training at `deadline` (time.monotonic()), with a last evaluation and checkpoint so the best is kept."""

    def __init__(self, deadline: float, record: dict):
        self.deadline, self.record = deadline, record

    def on_step_end(self, args, state, control, **kwargs):
        if time.monotonic() >= self.deadline and not control.should_training_stop:
            logger.warning("train.budget: stopping at step %d to finish within the budget", state.global_step)
            self.record["stopped_for_budget_at_step"] = state.global_step
            control.should_training_stop = True
            control.should_evaluate = True
            control.should_save = True
        return control
