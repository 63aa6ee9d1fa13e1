"""The models a service holds: each a Predictor behind its own micro-batcher."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tuneforge.errors import ConfigError, RunError
from tuneforge.models.artifact import ModelMeta
from tuneforge.predict.batcher import MicroBatcher
from tuneforge.rundir import RunDir, find_model_dir
from tuneforge.serve.generations import GenerationSlots
from tuneforge.serve.metrics import ServiceMetrics
from tuneforge.serve.settings import ServeSettings
from tuneforge.tasks import get_task

if TYPE_CHECKING:  # imported where models load: a `serve --workers` parent checks runs without loading torch
    from tuneforge.predict.predictor import Predictor


@dataclass
class ServedModel:
    name: str
    predictor: Predictor  # or the task's own runtime (a Recommender, a ChatBot)
    batcher: MicroBatcher | None  # None for a generating model, which has `slots` instead
    info: dict = field(default_factory=dict)
    slots: GenerationSlots | None = None

    @property
    def task(self) -> str:
        return self.predictor.meta.task

    def backend_name(self) -> str:
        backend = getattr(self.predictor, "backend", None)
        if backend is not None:
            return backend.name
        index = getattr(self.predictor, "index", None)  # a chat bot: torch models, a faiss or numpy index
        return f"torch + {index.backend}" if index is not None else "torch"

    def describe(self) -> dict:
        meta = self.predictor.meta
        return {
            "name": self.name,
            "task": meta.task,
            "route": get_task(meta.task).route,
            "labels": meta.labels,
            "method": meta.method,
            "kind": meta.kind,
            "base_model": meta.base_model,
            "max_length": meta.max_length if meta.kind != "tfidf" else None,
            "backend": self.backend_name(),
            "variant": self.info.get("variant", "original"),
            "metrics": self.info.get("metrics", {}),
        }


def parse_model_specs(specs: list[str]) -> list[tuple[str, Path]]:
    """`RUN_DIR` or `NAME=RUN_DIR`; names default to the run folder's name and must be unique."""
    out: list[tuple[str, Path]] = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        run_dir = Path(path if sep else spec)
        name = name if sep else run_dir.resolve().name
        if any(name == n for n, _ in out):
            raise ConfigError(f"model name {name!r} given twice; use NAME=RUN_DIR to tell them apart")
        out.append((name, run_dir))
    if not out:
        raise ConfigError("give at least one RUN_DIR to serve")
    return out


def _run_info(run_dir: Path) -> dict:
    try:
        return RunDir.open(run_dir).info()
    except RunError:  # a bare model folder, or a run whose run.json is damaged: serve it without metrics
        return {}


def servable_meta(run_dir: Path, variant: str | None) -> ModelMeta:
    """The saved model's meta; a ConfigError saying why when its task's models are not served (e.g. pre-training runs)."""
    meta = ModelMeta.read(find_model_dir(run_dir, variant))
    reason = get_task(meta.task).unservable(meta)
    if reason:
        raise ConfigError(f"{run_dir}: {reason}")
    return meta


def load_models(specs: list[tuple[str, Path]], settings: ServeSettings, metrics: ServiceMetrics) -> dict[str, ServedModel]:
    from tuneforge.predict.predictor import Predictor

    models = {}
    for name, run_dir in specs:
        task = get_task(servable_meta(run_dir, settings.variant).task)
        if task.serves_texts:
            predictor = Predictor.load(
                run_dir,
                batch_size=settings.max_batch_size,
                variant=settings.variant,
                threads=settings.threads,
                long_texts=settings.long_texts,
            )
        else:
            predictor = task.load_runtime(run_dir, variant=settings.variant)
        info = _run_info(run_dir)
        info["variant"] = predictor.meta.extra.get("variant", "original")
        if getattr(task, "generates", False):  # answers are generated a few at a time, not batched
            slots = GenerationSlots(settings.max_generations, settings.max_waiting_generations)
            models[name] = ServedModel(name=name, predictor=predictor, batcher=None, info=info, slots=slots)
            continue

        def on_batch(size: int, seconds: float, _name: str = name) -> None:
            metrics.batch_size.labels(_name).observe(size)
            metrics.inference_seconds.labels(_name).observe(seconds)

        def scored(texts: list[str], _p: Predictor = predictor):
            # window counts (truncation or chunking) from one tokenizer call per batch, in the worker thread
            return _p.predict_raw(texts), np.array(_p.windows(texts), dtype=np.int64)

        if not task.serves_texts:
            scored = predictor.answer_batch  # the task's own runtime batches its own queries

        depth = metrics.queue_depth.labels(name)
        depth.set(0)
        batcher = MicroBatcher(
            scored,
            max_batch_size=settings.max_batch_size,
            max_wait_ms=settings.max_wait_ms,
            max_queue=settings.max_queue,
            on_batch=on_batch,
            on_depth=depth.set,  # written on change, not read at scrape: with several workers each writes its own file
        )
        models[name] = ServedModel(name=name, predictor=predictor, batcher=batcher, info=info)
    return models
