"""`train(config)`: data -> run folder -> model -> evaluation -> card and cost, for every task.

Every method plugs in through `METHODS`; each builds its model inside a
temporary folder that becomes `model/` only when complete. Under a distributed
launcher only the main process creates the run folder and writes its files;
the other ranks train in step and learn the folder from it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from tuneforge.analysis.card import write_model_card
from tuneforge.atomic import atomic_dir
from tuneforge.config import RunConfig, dump_config
from tuneforge.data.prepare import PreparedData
from tuneforge.data.split import data_name
from tuneforge.engine.checkpoints import latest_complete_checkpoint
from tuneforge.engine.context import TrainContext
from tuneforge.engine.cost import CostMeter
from tuneforge.engine.distributed import (
    check_same_on_every_rank,
    distributed_problem,
    frames_digest,
    is_main_process,
    log_to_run_folder,
    quiet_console_on_other_ranks,
    restart_count,
    share_cores,
    share_from_main,
    world_size,
)
from tuneforge.engine.elastic import elastic_key, find_elastic_run
from tuneforge.engine.tracking import make_tracker
from tuneforge.errors import ConfigError, ResourceError, RunError, RunStopped
from tuneforge.lineage import write_lineage, write_lineage_hashes
from tuneforge.models.registry import resolve_model
from tuneforge.predict.runtime import load_runtime
from tuneforge.rundir import RunDir
from tuneforge.tasks import resolve_task
from tuneforge.tasks.augment import augment_training, check_augmentable

logger = logging.getLogger(__name__)
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.EPERM}


# torch.save reports a full disk as a RuntimeError from its zip writer, not as an OSError
_TORCH_WRITE_ERRORS = ("PytorchStreamWriter", "unexpected pos", "file write failed")
LOW_DISK_BYTES = 1 << 20


def write_failure(exc: BaseException, folder: Path) -> str | None:
    """Why `exc` means the machine could not write (disk full, read-only...), or None when it is something else."""
    if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:
        return exc.strerror or str(exc)
    if isinstance(exc, RuntimeError) and any(marker in str(exc) for marker in _TORCH_WRITE_ERRORS):
        with contextlib.suppress(OSError):
            if shutil.disk_usage(folder).free < LOW_DISK_BYTES:
                return "no space left on device"
        return f"a checkpoint could not be written ({str(exc)[:120]})"
    return None


def standard_method(name: str, loop: str = "fine-tune", *, streaming: bool = False, private: bool = False):
    """The engine's own training methods; imported on demand (tfidf should not pay for importing transformers).

    `loop` is the task's `training_loop`: language models (task lm) train full/lora in their own loop;
    `streaming`: tfidf and head learn chunk by chunk from split files (`data.streaming`);
    `private` (`train.privacy`): full/lora train with DP-SGD in a loop of their own (Trainer cannot clip per example)."""
    if streaming:
        from tuneforge.engine.streaming import train_head_streaming, train_tfidf_streaming

        return train_head_streaming if name == "head" else train_tfidf_streaming
    if loop == "language-model":
        from tuneforge.engine.pretrain import train_language_model

        return train_language_model
    if name in ("full", "lora") and private:
        from tuneforge.engine.private_tune import train_private_transformer

        return train_private_transformer
    if name in ("full", "lora"):
        from tuneforge.engine.transformer import train_transformer

        return train_transformer
    if name == "lstm":
        from tuneforge.engine.lstm import train_lstm

        return train_lstm
    from tuneforge.engine.linear import train_head, train_tfidf

    return train_head if name == "head" else train_tfidf


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict
    cost: dict
    resumed: bool = False
    train_info: dict = field(default_factory=dict)  # what the method reports: stop epoch and reason, probe floor...


def train(
    config: RunConfig, *, resume: str | Path | None = None, callbacks: list | None = None, data: PreparedData | None = None
) -> RunResult:
    """Train, evaluate and save one run; with `resume`, continue that run instead.

    `callbacks` are extra Hugging Face `TrainerCallback`s for the full/lora methods; `data`, rows
    already split (a retrain without some rows, `engine/forget.py`) instead of `task.prepare`.
    """
    from transformers import set_seed

    quiet_console_on_other_ranks()
    share_cores()
    if resume is not None:
        return _resume(Path(resume))
    notes: dict = {}
    callbacks = list(callbacks or [])
    if config.train.method == "auto":
        config, callbacks, notes = _choose_within_budget(config, callbacks)
    task = resolve_task(config)
    _check_distributable(config, task)
    check_augmentable(config, task)
    if restart_count() > 0:  # torchrun restarted the group: continue the run the first attempt started
        earlier = share_from_main(_earlier_attempt(config) if is_main_process() else None)
        if earlier is not None:
            logger.info("restart %d of the process group: resuming %s", restart_count(), earlier)
            return _resume(Path(earlier), callbacks=callbacks)
    set_seed(config.train.seed)
    model_path = resolve_model(config.model.name) if task.needs_pretrained(config) else None
    if data is None:
        _suggest_streaming(config)
        data = task.prepare(config, seed=config.train.seed)
    data = augment_training(data, config, task)
    if world_size() > 1:
        check_same_on_every_rank(frames_digest(data.splits()), what="the data split")
    try:
        run = RunDir(share_from_main(_start_run(config, data, task).path if is_main_process() else None))
    finally:
        if getattr(data, "streaming", False):  # staged split files not moved into a run are not kept
            data.discard_staging()
    log_to_run_folder(run.logs_dir)
    return _execute(TrainContext(config=config, task=task, data=data, run=run, model_path=model_path, callbacks=callbacks, notes=notes))


def _choose_within_budget(config: RunConfig, callbacks: list) -> tuple[RunConfig, list, dict]:
    """`method: auto`: the concrete config to train (saved as the run's config, so resume needs no replanning)."""
    from tuneforge.engine.budget import DeadlineCallback, choose_within_budget

    if world_size() > 1:  # each process would time its own plan and could choose differently
        raise ConfigError("invalid config:\n  train.method: auto plans for one process; choose a method to train with several")
    started = time.monotonic()
    config, decision = choose_within_budget(config, started=started)
    if "deadline_seconds" in decision:
        callbacks = [*callbacks, DeadlineCallback(started + decision["deadline_seconds"], decision)]
    return config, callbacks, {"auto": decision}


def _earlier_attempt(config: RunConfig) -> str | None:
    found = find_elastic_run(config.output.dir, elastic_key())
    return str(found) if found else None


def _suggest_streaming(config: RunConfig) -> None:
    """An in-memory run on a file larger than a quarter of the available memory: say that streaming exists, and why."""
    from tuneforge.data.bundled import is_bundled

    if config.data.streaming or is_bundled(config.data.train) or not Path(config.data.train).is_file():
        return
    import psutil

    size, available = Path(config.data.train).stat().st_size, psutil.virtual_memory().available
    if size > available / 4:
        logger.warning(
            "%s is %.1f GB, more than a quarter of the %.1f GB of available memory; an in-memory run holds it several times over. "
            "Set data.streaming: true (methods tfidf, head) to train with flat memory",
            config.data.train,
            size / 1e9,
            available / 1e9,
        )


def _check_distributable(config: RunConfig, task) -> None:
    if world_size() <= 1:
        return
    if config.data.streaming:
        raise ConfigError("invalid config:\n  data.streaming trains in one process; launch it without torchrun")
    method = task.method_of(config)
    problem = distributed_problem(method, own_trainer=task.trainer(method) is not None)
    if problem:
        raise ConfigError(problem)


def _start_run(config: RunConfig, data: PreparedData, task) -> RunDir:
    run = RunDir.create(config.output.dir, config.output.name or f"{task.method_of(config)}-{data_name(config.data.train)}")
    logger.info("run directory: %s", run.path)
    run.write_config(dump_config(config))
    run.write_data_report(data.report)
    sources = task.lineage_sources(config)
    if getattr(data, "streaming", False):  # the split files were written during the pass: move them in
        data.move_into(run.splits_dir)
        write_lineage_hashes(run, data.hashes, sources)
    else:
        for split, frame in data.splits().items():  # resume, evaluation and compression reuse the exact rows
            run.write_split(split, frame)
        write_lineage(run, task, data.splits(), sources, side_users=task.side_users(config))
    run.update(
        status="running",
        task=task.name,
        method=task.method_of(config),
        model=config.model.name,
        data=config.data.train,
        metric_name=task.validation_key(config).removeprefix("best_validation_"),
        started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **({"augmentation": data.report["augmentation"]} if "augmentation" in data.report else {}),
        **({"distributed": {"world_size": world_size(), "elastic_key": elastic_key()}} if world_size() > 1 else {}),
    )
    return run


def _resume(path: Path, *, callbacks: list | None = None) -> RunResult:
    from transformers import set_seed

    run = RunDir.open(path)
    info = run.info()
    config = run.read_config()
    if info.get("status") == "complete" and run.model_dir.is_dir():
        logger.info("%s already finished; nothing to resume", run.path)
        return RunResult(
            run_dir=run.path, metrics=info.get("metrics", {}), cost=info.get("cost", {}), resumed=True, train_info=info.get("train", {})
        )
    task = resolve_task(config)
    _check_distributable(config, task)
    set_seed(config.train.seed)
    log_to_run_folder(run.logs_dir)
    if config.data.streaming:
        from tuneforge.data.stream import StreamedData

        data = StreamedData.from_run(run.splits_dir, run.read_data_report(), chunk_rows=config.data.chunk_rows)
    else:
        data = _saved_data(run, strip_html=config.data.strip_html)
    recorded = (data.report.get("augmentation") or {}).get("rows_added")
    data = augment_training(data, config, task)  # the copies are not saved: made again, the same, from the saved rows
    if recorded is not None and recorded != data.report["augmentation"]["rows_added"]:
        logger.warning("data.augment made %s copies on resume, %s the first time", data.report["augmentation"]["rows_added"], recorded)
    if world_size() > 1:
        check_same_on_every_rank(frames_digest(data.splits()), what="the saved data split")
    checkpoint = None
    if is_main_process():  # rank 0 picks (and cleans up); every rank resumes from the same checkpoint
        run.remove_stale_temporaries()
        checkpoint = latest_complete_checkpoint(run.checkpoints_dir, remove_incomplete=True)
        if checkpoint is None and task.method_of(config) in ("full", "lora"):
            logger.warning("%s has no complete checkpoint; training starts from the beginning", run.path)
        restarts = {"distributed": {**(info.get("distributed") or {}), "restarts": restart_count()}} if world_size() > 1 else {}
        run.update(status="running", resumed_from=str(checkpoint) if checkpoint else None, **restarts)
    shared = share_from_main(str(checkpoint) if checkpoint else None)
    checkpoint = Path(shared) if shared else None
    model_path = resolve_model(config.model.name) if task.needs_pretrained(config) else None
    ctx = TrainContext(
        config=config, task=task, data=data, run=run, model_path=model_path, resume_from=checkpoint, callbacks=list(callbacks or [])
    )
    result = _execute(ctx)
    result.resumed = True
    return result


def _model_folder(run: RunDir):
    """Where a method builds the model: an atomic `model/` on the main process, scratch elsewhere."""
    if is_main_process():
        return atomic_dir(run.model_dir)
    return tempfile.TemporaryDirectory(prefix="tuneforge-rank-")


def _execute(ctx: TrainContext) -> RunResult:
    config, run, task = ctx.config, ctx.run, ctx.task
    meter = CostMeter(usd_per_hour=config.cost.usd_per_hour)
    tracker = None
    try:
        tracker = make_tracker(config, run) if is_main_process() else None
        if tracker is not None:
            ctx.callbacks.extend(tracker.callbacks())
        with _model_folder(run) as tmp:
            method = task.method_of(config)
            streaming = getattr(ctx.data, "streaming", False)
            fit = task.trainer(method) or standard_method(
                method, task.training_loop, streaming=streaming, private=config.train.privacy is not None
            )
            train_info = {**ctx.notes, **fit(ctx, Path(tmp))}
        if not is_main_process():
            return RunResult(run_dir=run.path, metrics={}, cost={})
        main_split = "test" if ctx.data.test is not None else "validation"
        runtime = load_runtime(task, run.path, batch_size=config.train.eval_batch_size)
        if streaming:  # held-out rows scored chunk by chunk; only labels and probabilities are kept
            metrics = task.evaluate_chunks(
                runtime, ctx.data.chunks(main_split), run.eval_dir, split=main_split, **task.evaluation_options(config)
            )
        else:
            metrics = task.evaluate(runtime, ctx.frame(main_split), run.eval_dir, split=main_split, **task.evaluation_options(config))
        cost = {**meter.snapshot(), **train_info.get("throughput", {})}
        if "distributed" in train_info:  # wall time is the job's; cpu seconds and peak memory are rank 0's
            cost["distributed"] = train_info["distributed"]
        run.write_cost(cost)
        write_model_card(
            run, config=config.to_dict(), task=task, data_report=ctx.data.report, metrics=metrics, cost=cost, train_info=train_info
        )
        _write_report(run)
        if tracker is not None:
            tracker.log_final(task.headline(metrics), cost)
            tracker.close("complete")
    except BaseException as exc:
        if is_main_process():
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else exc.status if isinstance(exc, RunStopped) else "failed"
            if tracker is not None:
                with contextlib.suppress(Exception):  # tracking must not hide why the run failed
                    tracker.close(status)
            with contextlib.suppress(OSError):  # the disk may be the problem
                run.update(status=status, error=f"{type(exc).__name__}: {exc}"[:2000])
        problem = write_failure(exc, run.path)
        if problem:
            raise ResourceError(
                f"cannot write under {run.path}: {problem}. Earlier complete checkpoints are intact; "
                f"fix the disk, then run `tuneforge train --resume {run.path}`"
            ) from exc
        raise
    run.update(
        status="complete",
        finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        eval_split=main_split,
        metrics=task.headline(metrics),
        wall_seconds=cost["wall_seconds"],
        cost=cost,
        train=train_info,
        error=None,
    )
    return RunResult(run_dir=run.path, metrics=metrics, cost=cost, train_info=train_info)


def _write_report(run: RunDir) -> None:
    """The run's HTML report; a page that cannot be drawn is logged, it does not fail a finished run."""
    from tuneforge.analysis.report import write_report

    try:
        write_report([run.path])
    except Exception as exc:  # noqa: BLE001 - the model and metrics are already saved
        logger.warning("report.html not written: %s: %s", type(exc).__name__, exc)


def _saved_data(run: RunDir, *, strip_html: bool) -> PreparedData:
    frames = run.splits()
    if "train" not in frames or "validation" not in frames:
        raise RunError(f"{run.path}: saved splits are missing; start a new run with `tuneforge train`")
    report = run.read_data_report()
    transforms = report.get("transforms")
    if transforms is None:  # runs from before transform lists: strip_html decided
        from tuneforge.data.transforms import default_transforms

        transforms = default_transforms(strip_html=strip_html)
    return PreparedData(
        train=frames["train"],
        validation=frames["validation"],
        test=frames.get("test"),
        labels=report["labels"],
        report=report,
        transforms=transforms,
    )
