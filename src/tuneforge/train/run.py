"""`train(config)`: data -> run directory -> model -> evaluation -> card and cost.

Every method plugs in through `METHODS`; each builds its model inside a
temporary folder that becomes `model/` only when complete.
"""

from __future__ import annotations

import contextlib
import errno
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from tuneforge.config import RunConfig, dump_config, load_config
from tuneforge.data.prepare import SPLITS, PreparedData, prepare_data
from tuneforge.data.splits import data_name, read_split, write_split
from tuneforge.errors import ResourceError, RunError
from tuneforge.evaluate.card import write_model_card
from tuneforge.evaluate.report import evaluate_frame
from tuneforge.models.registry import resolve_model
from tuneforge.predict.predictor import Predictor
from tuneforge.runs import (
    CONFIG_FILE,
    atomic_dir,
    atomic_write_json,
    atomic_write_text,
    create_run_dir,
    read_run_info,
    require_run_dir,
    write_run_info,
)
from tuneforge.train.checkpoints import latest_complete_checkpoint
from tuneforge.train.context import TrainContext
from tuneforge.train.cost import CostMeter

logger = logging.getLogger(__name__)
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.EPERM}


def _method(name: str) -> Callable[[TrainContext, Path], dict]:
    # Imported on demand: the tfidf baseline should not pay for importing transformers.
    if name in ("full", "lora"):
        from tuneforge.train.transformer import train_transformer

        return train_transformer
    if name == "head":
        from tuneforge.train.head import train_head

        return train_head
    from tuneforge.train.tfidf import train_tfidf

    return train_tfidf


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict
    cost: dict
    resumed: bool = False


def train(config: RunConfig, *, resume: str | Path | None = None, callbacks: list | None = None) -> RunResult:
    """Train, evaluate and save one run; with `resume`, continue that run instead.

    `callbacks` are extra Hugging Face `TrainerCallback`s for the full/lora methods.
    """
    from transformers import set_seed

    if resume is not None:
        return _resume(Path(resume))
    set_seed(config.train.seed)
    model_path = None if config.train.method == "tfidf" else resolve_model(config.model.name)
    data = prepare_data(config.data, seed=config.train.seed)
    run_dir = create_run_dir(config.output.dir, config.output.name or f"{config.train.method}-{data_name(config.data.train)}")
    logger.info("run directory: %s", run_dir)
    atomic_write_text(run_dir / CONFIG_FILE, dump_config(config))
    atomic_write_json(run_dir / "data_report.json", data.report)
    _save_splits(run_dir, data)
    write_run_info(
        run_dir,
        status="running",
        method=config.train.method,
        model=config.model.name,
        data=config.data.train,
        metric_name=config.train.metric,
        started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    return _execute(TrainContext(config=config, data=data, run_dir=run_dir, model_path=model_path, callbacks=list(callbacks or [])))


def _resume(run_dir: Path) -> RunResult:
    from transformers import set_seed

    run_dir = require_run_dir(run_dir)
    info = read_run_info(run_dir)
    config = load_config(run_dir / CONFIG_FILE)
    if info.get("status") == "complete" and (run_dir / "model").is_dir():
        logger.info("%s already finished; nothing to resume", run_dir)
        return RunResult(run_dir=run_dir, metrics=info.get("metrics", {}), cost=info.get("cost", {}), resumed=True)
    set_seed(config.train.seed)
    data = _load_splits(run_dir, config)
    checkpoint = latest_complete_checkpoint(run_dir / "checkpoints", remove_incomplete=True)
    if checkpoint is None and config.train.method in ("full", "lora"):
        logger.warning("%s has no complete checkpoint; training starts from the beginning", run_dir)
    write_run_info(run_dir, status="running", resumed_from=str(checkpoint) if checkpoint else None)
    model_path = None if config.train.method == "tfidf" else resolve_model(config.model.name)
    ctx = TrainContext(config=config, data=data, run_dir=run_dir, model_path=model_path, resume_from=checkpoint)
    result = _execute(ctx)
    result.resumed = True
    return result


def _execute(ctx: TrainContext) -> RunResult:
    config, run_dir = ctx.config, ctx.run_dir
    meter = CostMeter(usd_per_hour=config.cost.usd_per_hour)
    try:
        with atomic_dir(run_dir / "model") as tmp:
            train_info = _method(config.train.method)(ctx, tmp)
        main_split = "test" if ctx.data.test is not None else "validation"
        predictor = Predictor.load(run_dir, batch_size=config.train.eval_batch_size)
        metrics = evaluate_frame(predictor, ctx.data.splits()[main_split], run_dir / "eval", split=main_split)
        cost = meter.snapshot()
        atomic_write_json(run_dir / "cost.json", cost)
        write_model_card(run_dir, config=config.to_dict(), data_report=ctx.data.report, metrics=metrics, cost=cost, train_info=train_info)
    except BaseException as exc:
        with contextlib.suppress(OSError):  # the disk may be the problem
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else getattr(exc, "run_status", "failed")
            write_run_info(run_dir, status=status, error=f"{type(exc).__name__}: {exc}"[:2000])
        if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:
            raise ResourceError(
                f"cannot write under {run_dir}: {exc.strerror or exc}. Earlier complete checkpoints are intact; "
                f"fix the disk, then run `tuneforge train --resume {run_dir}`"
            ) from exc
        raise
    summary = {k: metrics[k] for k in ("accuracy", "macro_f1", "micro_f1", "weighted_f1") if k in metrics}
    write_run_info(
        run_dir,
        status="complete",
        finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        eval_split=main_split,
        metrics=summary,
        wall_seconds=cost["wall_seconds"],
        cost=cost,
        train=train_info,
        error=None,
    )
    return RunResult(run_dir=run_dir, metrics=metrics, cost=cost)


def _save_splits(run_dir: Path, data: PreparedData) -> None:
    """Keep the exact rows of each split: resume, evaluation and compression reuse them."""
    for split, frame in data.splits().items():
        write_split(run_dir, split, frame)


def _load_splits(run_dir: Path, config: RunConfig) -> PreparedData:
    import json

    frames = {split: frame for split in SPLITS if (frame := read_split(run_dir, split)) is not None}
    if "train" not in frames or "validation" not in frames:
        raise RunError(f"{run_dir}: saved splits are missing; start a new run with `tuneforge train`")
    report = json.loads((run_dir / "data_report.json").read_text(encoding="utf-8"))
    return PreparedData(
        train=frames["train"], validation=frames["validation"], test=frames.get("test"), labels=report["labels"], report=report
    )
