"""`tuneforge plan`: what each method will cost on this data and this machine, before training.

See `estimate.py` for how time and memory are built up, `calibrate.py` for the cached
per-machine measurement, `batches.py` for the simulated padding.
"""

from __future__ import annotations

from dataclasses import dataclass

from tuneforge.errors import ConfigError
from tuneforge.plan.estimate import (
    PLANNED_TASKS,
    TRANSFORMER_METHODS,
    MethodPlan,
    check_budget,
    data_stats,
    expected_from_past_runs,
    lstm_plan,
    tfidf_plan,
    transformer_plan,
)

PLAN_ORDER = ("tfidf", "lstm", "head", "lora", "full")


@dataclass
class Plan:
    data: dict
    budget_seconds: float | None
    methods: list[MethodPlan]

    def to_dict(self) -> dict:
        return {"data": self.data, "budget_seconds": self.budget_seconds, "methods": [m.to_dict() for m in self.methods]}

    def fitting(self) -> list[str]:
        return [m.method for m in self.methods if m.fits_budget is not False and m.fits_memory]


def make_plan(
    config, *, methods: list[str] | None = None, budget_seconds: float | None = None, refresh=False, progress=None, stats=None
) -> Plan:
    """A `MethodPlan` per method (default: every method the task has, cheapest first); `stats`: data already measured."""
    from tuneforge.models.registry import resolve_model
    from tuneforge.tasks import get_task

    task = get_task(config.task)
    if task.name not in PLANNED_TASKS:
        raise ConfigError(f"tuneforge plan covers tasks {', '.join(PLANNED_TASKS)} so far; this config is task {task.name!r}")
    chosen = methods or [m for m in PLAN_ORDER if m in task.methods]
    unknown = [m for m in chosen if m not in PLAN_ORDER or m not in task.methods]
    if unknown:
        raise ConfigError(f"--methods: {', '.join(unknown)} not plannable for task {task.name} (choose from {', '.join(PLAN_ORDER)})")
    model_path = resolve_model(config.model.name) if any(m in TRANSFORMER_METHODS for m in chosen) else None
    stats = stats if stats is not None else data_stats(config, task, model_path)
    usd = config.cost.usd_per_hour
    plans = []
    for method in chosen:
        if method == "tfidf":
            plan = tfidf_plan(config, task, stats, usd_per_hour=usd)
        elif method == "lstm":
            plan = lstm_plan(config, task, stats, usd_per_hour=usd)
        else:
            plan = transformer_plan(config, task, stats, model_path, method, usd_per_hour=usd, refresh=refresh, progress=progress)
        plan.expected = expected_from_past_runs(config, method)
        plans.append(plan)
    check_budget(plans, budget_seconds)
    return Plan(data=stats.summary(), budget_seconds=budget_seconds, methods=plans)
