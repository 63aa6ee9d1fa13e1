"""`tuneforge plan`: what each method will cost on this data and this machine, before training.

See `estimate.py` for how time and memory are built up, `calibrate.py` for the cached
per-machine measurement, `batches.py` for the simulated padding, `project.py` and
`gpus.py` for the GPU projections (not measured).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
from tuneforge.plan.gpus import GpuTable
from tuneforge.plan.project import LABEL, gpu_memory_gb, model_shape, project

PLAN_ORDER = ("tfidf", "lstm", "head", "lora", "full")
LORA_TRAINABLE_SHARE = 0.02  # an upper bound on LoRA's adapters + head as a share of the model's parameters (GPU memory)


@dataclass
class Plan:
    data: dict
    budget_seconds: float | None
    methods: list[MethodPlan]
    gpu_projection: dict | None = field(default=None)  # the table and assumptions behind each method's `gpus`

    def to_dict(self) -> dict:
        out = {"data": self.data, "budget_seconds": self.budget_seconds, "methods": [m.to_dict() for m in self.methods]}
        if self.gpu_projection is not None:
            out["gpu_projection"] = self.gpu_projection
        return out

    def fitting(self) -> list[str]:
        return [m.method for m in self.methods if m.fits_budget is not False and m.fits_memory]


def make_plan(
    config,
    *,
    methods: list[str] | None = None,
    budget_seconds: float | None = None,
    refresh=False,
    progress=None,
    stats=None,
    gpu_table: GpuTable | None = None,
) -> Plan:
    """A `MethodPlan` per method (default: every method the task has, cheapest first); `stats`: data already measured;
    `gpu_table`: also project each transformer method onto these GPU types."""
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
    projection = None
    if gpu_table is not None:
        projection = {"label": LABEL, "table": gpu_table.source, "assumptions": gpu_table.assumptions()}
        if model_path is not None:
            _project_on_gpus(config, plans, model_path, gpu_table, budget_seconds)
    return Plan(data=stats.summary(), budget_seconds=budget_seconds, methods=plans, gpu_projection=projection)


def _project_on_gpus(config, plans: list[MethodPlan], model_path: str, table: GpuTable, budget_seconds: float | None) -> None:
    t = config.train
    shape = model_shape(model_path)
    for plan in plans:
        if plan.method not in TRANSFORMER_METHODS:
            continue
        memory = gpu_memory_gb(
            shape,
            plan.method,
            batch_size=t.batch_size,
            eval_batch_size=t.eval_batch_size,
            max_length=t.max_length,
            trainable=int(shape.params * LORA_TRAINABLE_SHARE),
        )
        plan.gpus = project(plan, shape, table, memory_gb=memory, budget_s=budget_seconds)
