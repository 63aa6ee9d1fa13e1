"""Study results: trials table, best parameters, importances, history plot and a runnable best.yaml."""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

import yaml

from tuneforge.atomic import atomic_write_json, atomic_write_text
from tuneforge.config import RunConfig
from tuneforge.plots import pyplot, save_figure
from tuneforge.tune.space import apply_params

logger = logging.getLogger(__name__)
COST_COLUMNS = ("wall_seconds", "peak_rss_mb", "run_dir")


def metric_name(config: RunConfig) -> str:
    """The validation metric the study maximises, as the task names it (macro_f1, ndcg@10...)."""
    from tuneforge.tasks import get_task

    return get_task(config.task).validation_key(config).removeprefix("best_validation_")


def result_columns(study) -> list[str]:
    """The trials' test headline columns (test_accuracy, test_ndcg@10...) in first-seen order, then cost."""
    seen: dict[str, None] = {}
    for t in study.trials:
        seen.update({k: None for k in t.user_attrs if k.startswith("test_")})
    return [*seen, *COST_COLUMNS]


def write_study_report(study, config: RunConfig, study_dir: Path) -> dict[str, Path]:
    files = {"trials": _trials_csv(study, config, study_dir / "trials.csv")}
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    if complete:
        best = study.best_trial
        best_config = apply_params(config, best.params).to_dict()
        best_config.pop("tune", None)  # best.yaml trains the winner; it does not search again
        files["best_yaml"] = atomic_write_text(
            study_dir / "best.yaml",
            f"# best of study {study.study_name}: trial {best.number}, validation {metric_name(config)}={best.value:.4f}\n"
            + yaml.safe_dump(best_config, sort_keys=False),
        )
        files["best"] = atomic_write_json(
            study_dir / "best.json",
            {
                "trial": best.number,
                "value": best.value,
                "metric": metric_name(config),
                "params": best.params,
                **{k: best.user_attrs.get(k) for k in result_columns(study)},
            },
        )
        files["history_png"] = _history_png(study, config, study_dir / "history.png")
        importances = _importances(study)
        if importances:
            files["importances"] = atomic_write_json(study_dir / "importances.json", importances)
    return files


def _trials_csv(study, config: RunConfig, path: Path) -> Path:
    names = list(config.tune.space)
    columns = result_columns(study)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["number", "state", f"validation_{metric_name(config)}", *names, *columns, "note"])
    for t in study.trials:
        note = t.user_attrs.get("skipped") or t.user_attrs.get("error") or ""
        writer.writerow(
            [
                t.number,
                t.state.name,
                t.value if t.value is not None else "",
                *[t.params.get(n, "") for n in names],
                *[t.user_attrs.get(k, "") for k in columns],
                note,
            ]
        )
    return atomic_write_text(path, buffer.getvalue())


def _importances(study) -> dict[str, float]:
    import optuna

    try:
        return {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
    except (ValueError, RuntimeError, ZeroDivisionError) as exc:  # too few trials or a constant space
        logger.info("parameter importances not computed: %s", exc)
        return {}


def _history_png(study, config: RunConfig, path: Path) -> Path:
    plt = pyplot()
    done = [t for t in study.trials if t.value is not None]
    fig, ax = plt.subplots(figsize=(6, 4))
    xs, ys = [t.number for t in done], [t.value for t in done]
    ax.plot(xs, ys, "o", label="trial")
    best, running = [], float("-inf")
    for y in ys:
        running = max(running, y)
        best.append(running)
    ax.step(xs, best, where="post", color="tab:red", label="best so far")
    pruned = [t for t in study.trials if t.state.name == "PRUNED" and t.last_step is not None]
    if pruned:
        ax.plot(
            [t.number for t in pruned],
            [t.intermediate_values[t.last_step] for t in pruned],
            "x",
            color="grey",
            label="pruned (last report)",
        )
    ax.set_xlabel("trial")
    ax.set_ylabel(f"validation {metric_name(config)}")
    ax.set_title(f"Optimisation history: {study.study_name}")
    ax.legend(loc="lower right")
    return save_figure(fig, plt, path)
