"""File scoring fanned out to Ray actors: local by default, or an existing cluster (`--address`).

Each actor loads the predictor once and scores whole chunks. Reading and writing
stay in `files.score_file` on the driver, with tuneforge's own reader (file/line
errors, encodings, validation) and writer, so the output is byte-identical to
the single-process path. Chunks go out round-robin and come back in input order;
at most two per actor are in flight, so the driver's memory stays bounded
whatever the file size. (Ray Data's own readers would skip that validation and
write a folder of part files instead of the file the user named.)
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from tuneforge.errors import ConfigError
from tuneforge.models.artifact import ModelMeta
from tuneforge.rundir import find_model_dir
from tuneforge.tasks import get_task

logger = logging.getLogger(__name__)
IN_FLIGHT_PER_ACTOR = 2


def import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--engine ray needs the ray extra: pip install 'tuneforge[ray]'") from None
    return ray


class RayScoring:
    """`map_chunks` for `score_file`, computed by `workers` Ray actors that each hold one predictor."""

    def __init__(
        self,
        path: str | Path,
        *,
        workers: int | None = None,
        address: str | None = None,
        batch_size: int = 32,
        variant: str | None = None,
        long_texts: str = "truncate",
    ):
        model_dir = find_model_dir(path, variant)
        self.meta = ModelMeta.read(model_dir)
        self.task = get_task(self.meta.task)
        if not self.task.serves_texts:
            raise ConfigError(f"{model_dir} is a {self.meta.task} model, which does not score texts")
        self.ray = import_ray()
        self._started_here = not self.ray.is_initialized()
        if self._started_here:
            self.ray.init(**_init_options(address, workers))
        cpus = int(self.ray.cluster_resources().get("CPU", 1))
        self.workers = max(1, workers or cpus)
        threads = max(1, cpus // self.workers) if address is None else None
        actor = self.ray.remote(num_cpus=1)(_ScoringActor)
        self.actors = [
            actor.remote(str(model_dir), batch_size=batch_size, long_texts=long_texts, threads=threads) for _ in range(self.workers)
        ]
        logger.info("scoring with %d Ray actor(s) on %s", self.workers, address or "a local Ray")

    def map_chunks(self, chunks: Iterator[pd.DataFrame]) -> Iterator[tuple[pd.DataFrame, dict[str, list]]]:
        in_flight: deque = deque()
        try:
            for i, frame in enumerate(chunks):
                in_flight.append((frame, self.actors[i % self.workers].score.remote(frame[["text"]])))
                if len(in_flight) >= IN_FLIGHT_PER_ACTOR * self.workers:
                    frame, ref = in_flight.popleft()
                    yield frame, self.ray.get(ref)
            while in_flight:
                frame, ref = in_flight.popleft()
                yield frame, self.ray.get(ref)
        finally:
            for _, ref in in_flight:  # stopped early (an error, SIGTERM): do not leave the cluster working for nobody
                self.ray.cancel(ref)

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []
        if self._started_here:
            self.ray.shutdown()


def _init_options(address: str | None, workers: int | None) -> dict:
    if address is not None:
        return {"address": address}
    env = {"OMP_WAIT_POLICY": "PASSIVE", "TOKENIZERS_PARALLELISM": "false"}  # spinning OpenMP threads slow shared cores
    for name in ("TUNEFORGE_CACHE", "HF_HUB_OFFLINE", "PYTHONPATH"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    options = {"include_dashboard": False, "log_to_driver": False, "runtime_env": {"env_vars": env}}
    if workers:
        options["num_cpus"] = max(workers, 1)
    return options


class _ScoringActor:
    """One loaded predictor in one Ray worker process."""

    def __init__(self, model_dir: str, *, batch_size: int, long_texts: str, threads: int | None):
        from tuneforge.predict.predictor import Predictor

        self.predictor = Predictor.load(model_dir, batch_size=batch_size, long_texts=long_texts, threads=threads)

    def score(self, frame: pd.DataFrame) -> dict[str, list]:
        from tuneforge.predict.files import chunk_columns

        return chunk_columns(self.predictor, frame)
