"""`tune(config)`: an Optuna study whose trials are ordinary tuneforge runs.

Coordination between workers is Optuna's own: every process that points at the
same storage (SQLite file by default, any SQLAlchemy URL) joins the same study.
Rerunning the command continues the study until `tune.trials` trials have
finished (complete or pruned); trials of a worker that died are marked failed
(at once for this machine's dead processes, via Optuna's heartbeat otherwise).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from tuneforge.config import RunConfig
from tuneforge.data.split import data_name
from tuneforge.errors import MissingDependencyError
from tuneforge.tune.space import apply_params, check_space, grid, suggest

logger = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 30


def _optuna():
    try:
        import optuna
    except ImportError:
        raise MissingDependencyError("hyper-parameter search needs optuna: pip install 'tuneforge[tune]'") from None
    return optuna


@dataclass
class StudyResult:
    study_dir: Path
    best_params: dict
    best_value: float | None
    finished: int
    failed: int
    files: dict[str, Path]


class BudgetReached(Exception):
    """Other workers already run or finished the requested number of trials."""


def study_dir_for(config: RunConfig) -> Path:
    from tuneforge.tasks import get_task

    name = config.tune.study_name or f"{get_task(config.task).method_of(config)}-{data_name(config.data.train)}"
    return Path(config.output.dir) / f"study-{name}"


def _storage(config: RunConfig, study_dir: Path):
    optuna = _optuna()
    url = config.tune.storage or f"sqlite:///{(study_dir / 'study.db').resolve()}"
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna, and what fails dead remote workers
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=4 * HEARTBEAT_SECONDS
        )


def _sampler(config: RunConfig):
    optuna = _optuna()
    seed = config.tune.seed
    if config.tune.sampler == "grid":
        return optuna.samplers.GridSampler({k: grid(v, k) for k, v in config.tune.space.items()}, seed=seed)
    if config.tune.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _pruner(config: RunConfig):
    optuna = _optuna()
    return {
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0),
        "halving": lambda: optuna.pruners.SuccessiveHalvingPruner(),
        "none": lambda: optuna.pruners.NopPruner(),
    }[config.tune.pruner]()


def open_study(config: RunConfig):
    optuna = _optuna()
    study_dir = study_dir_for(config)
    study_dir.mkdir(parents=True, exist_ok=True)
    for attempt in range(5):
        try:
            study = optuna.create_study(
                study_name=study_dir.name,
                storage=_storage(config, study_dir),
                sampler=_sampler(config),
                pruner=_pruner(config),
                direction="maximize",
                load_if_exists=True,
            )
            return study, study_dir
        except Exception as exc:  # noqa: BLE001
            # Workers starting together race to create the tables / the study row; the loser
            # sees an integrity or "already exists" error and simply loads what the winner made.
            if attempt == 4:
                raise
            logger.info("study storage busy (%s); retrying", type(exc).__name__)
            time.sleep(0.5 + attempt)
    raise AssertionError("unreachable")


def fail_dead_local_trials(study) -> int:
    """RUNNING trials started on this machine by a process that no longer exists -> FAIL."""
    optuna = _optuna()
    host, failed = socket.gethostname(), 0
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        attrs = trial.user_attrs
        if attrs.get("host") != host or not attrs.get("pid") or _alive(int(attrs["pid"])):
            continue
        trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, trial.number)
        try:
            study._storage.set_trial_user_attr(trial_id, "error", "worker process died")
            study._storage.set_trial_state_values(trial_id, state=optuna.trial.TrialState.FAIL)
            failed += 1
        except optuna.exceptions.UpdateFinishedTrialError:
            pass
    if failed:
        logger.warning("marked %d trial(s) of dead local workers as failed", failed)
    return failed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid != os.getpid()


def _finished(study) -> int:
    optuna = _optuna()
    return len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)))


def make_objective(config: RunConfig, study_dir: Path, budget: int):
    optuna = _optuna()
    from tuneforge.engine.run import train
    from tuneforge.rundir import RunDir
    from tuneforge.tasks import resolve_task
    from tuneforge.tune.pruning import PruningCallback

    task = resolve_task(config)

    def objective(trial) -> float:
        # who runs the trial, first: a worker killed before this line leaves a RUNNING trial that only
        # Optuna's heartbeat grace period (4 x 30 s) can fail, and until then the budget counts it
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        running_before = [
            t for t in trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)) if t.number < trial.number
        ]
        if _finished(trial.study) + len(running_before) >= budget:
            trial.set_user_attr("skipped", "trial budget reached by other workers")
            raise BudgetReached()
        params = {name: suggest(trial, name, spec) for name, spec in config.tune.space.items()}
        trial_config = apply_params(config, params)
        trial_config = trial_config.model_copy(
            update={
                "output": trial_config.output.model_copy(update={"dir": str(study_dir / "trials"), "name": f"trial-{trial.number:03d}"})
            }
        )
        logger.info("trial %d: %s", trial.number, params)
        result = train(trial_config, callbacks=[PruningCallback(trial, config.train.metric)])
        info = RunDir(result.run_dir).info()
        key = task.validation_key(config)
        value = info["train"].get(key)
        headline = {f"test_{name}": val for name, val in task.headline(result.metrics).items()}
        for name, val in (
            ("run_dir", str(result.run_dir)),
            *headline.items(),
            ("wall_seconds", result.cost["wall_seconds"]),
            ("peak_rss_mb", result.cost["peak_rss_mb"]),
        ):
            trial.set_user_attr(name, val)
        logger.info(
            "trial %d: validation %s=%.4f, %.0f s, %.0f MB",
            trial.number,
            key.removeprefix("best_validation_"),
            value,
            result.cost["wall_seconds"],
            result.cost["peak_rss_mb"],
        )
        return float(value)

    return objective


def tune(config: RunConfig, *, trials: int | None = None, timeout_s: float | None = None) -> StudyResult:
    """Run (or continue) the study until it has `trials` finished trials or time runs out."""
    optuna = _optuna()
    check_space(config)
    budget = trials or config.tune.trials
    timeout_s = timeout_s or config.tune.timeout_s
    study, study_dir = open_study(config)
    fail_dead_local_trials(study)
    objective = make_objective(config, study_dir, budget)
    started = time.monotonic()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    while _finished(study) < budget:
        if timeout_s is not None and time.monotonic() - started >= timeout_s:
            logger.info("timeout reached after %d finished trials", _finished(study))
            break
        if config.tune.sampler == "grid" and study.sampler.is_exhausted(study):
            logger.info("grid exhausted")
            break
        before = len(study.trials)
        study.optimize(objective, n_trials=1, catch=(Exception,), gc_after_trial=True)
        last = study.trials[before] if len(study.trials) > before else None
        if last is not None and last.user_attrs.get("skipped"):
            break
        failures = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL and not t.user_attrs.get("skipped")]
        if len(failures) >= max(3, budget):
            logger.error("stopping: %d trials failed", len(failures))
            break
    from tuneforge.tune.report import write_study_report

    files = write_study_report(study, config, study_dir)
    best = _best(study)
    return StudyResult(
        study_dir=study_dir,
        best_params=best.params if best else {},
        best_value=best.value if best else None,
        finished=_finished(study),
        failed=len([t for t in study.trials if t.state == optuna.trial.TrialState.FAIL and not t.user_attrs.get("skipped")]),
        files=files,
    )


def _best(study):
    try:
        return study.best_trial
    except ValueError:
        return None
