"""Experiment tracking through the libraries users already watch: TensorBoard event files or an MLflow store.

`tracking.backend: tensorboard` writes events under the run folder (`RUN/tensorboard/`):
training scalars through Hugging Face's own `TensorBoardCallback`, then the test
metrics and cost. `mlflow` opens one MLflow run per tuneforge run (local SQLite store
`<output.dir>/mlflow.db` unless `tracking.uri` names another), logs the flattened
config as parameters, training scalars as they come, then test metrics, cost and the
final status. Only the main process tracks.
"""

from __future__ import annotations

import logging
import math

from tuneforge.errors import ConfigError

logger = logging.getLogger(__name__)


def _numbers(values: dict, prefix: str = "") -> dict[str, float]:
    return {
        f"{prefix}{k}": float(v) for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    }


def _flat(config: dict, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)[:500]  # MLflow caps parameter values
    return out


class TensorBoardTracker:
    def __init__(self, run, config):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("tracking.backend tensorboard needs: pip install 'tuneforge[tracking]'") from None
        self.writer = SummaryWriter(log_dir=str(run.path / "tensorboard"))
        self.writer.add_text("config", f"```\n{config.to_dict()}\n```")

    def callbacks(self) -> list:
        from transformers.integrations import TensorBoardCallback

        return [TensorBoardCallback(tb_writer=self.writer)]

    def log_final(self, metrics: dict, cost: dict) -> None:
        for name, value in {**_numbers(metrics, "test/"), **_numbers(cost, "cost/")}.items():
            self.writer.add_scalar(name, value)

    def close(self, status: str) -> None:
        self.writer.add_text("status", status)
        self.writer.close()


class MlflowTracker:
    def __init__(self, run, config):
        try:
            import mlflow
        except ImportError:
            raise ConfigError("tracking.backend mlflow needs: pip install 'tuneforge[tracking]'") from None
        from pathlib import Path

        self.mlflow = mlflow
        uri = config.tracking.uri or f"sqlite:///{(Path(config.output.dir).resolve() / 'mlflow.db').as_posix()}"
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(config.tracking.experiment or "tuneforge")
        self.active = mlflow.start_run(run_name=run.name, tags={"tuneforge.run_dir": str(run.path), "tuneforge.task": config.task})
        mlflow.log_params(_flat(config.to_dict()))
        logger.info("MLflow run %s in %s", self.active.info.run_id, uri)

    def callbacks(self) -> list:
        from transformers import TrainerCallback

        mlflow = self.mlflow

        class LogToMlflow(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):
                if logs and state.is_world_process_zero:
                    mlflow.log_metrics(_numbers(logs), step=state.global_step)

        return [LogToMlflow()]

    def log_final(self, metrics: dict, cost: dict) -> None:
        self.mlflow.log_metrics({**_numbers(metrics, "test_"), **_numbers(cost, "cost_")})

    def close(self, status: str) -> None:
        self.mlflow.set_tag("tuneforge.status", status)
        self.mlflow.end_run(status="FINISHED" if status == "complete" else "FAILED" if status == "failed" else "KILLED")


TRACKERS = {"tensorboard": TensorBoardTracker, "mlflow": MlflowTracker}


def make_tracker(config, run):
    """The tracker the config asks for, or None."""
    backend = config.tracking.backend
    return None if backend == "none" else TRACKERS[backend](run, config)
