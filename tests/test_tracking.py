"""Tracking: TensorBoard event files in the run, or an MLflow run in a local SQLite store, with training scalars and test metrics."""

from __future__ import annotations

import pytest
import yaml

from tuneforge.config import load_config
from tuneforge.engine.run import train

from conftest import write_config


def _config(tmp_path, tiny_bert, backend, method="full"):
    path = write_config(tmp_path, tiny_bert, method=method, epochs=1)
    raw = yaml.safe_load(path.read_text())
    raw["tracking"] = {"backend": backend}
    path.write_text(yaml.safe_dump(raw))
    return path


def test_tensorboard_events_hold_training_and_test_scalars(tmp_path, tiny_bert):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = train(load_config(_config(tmp_path, tiny_bert, "tensorboard")))
    events = EventAccumulator(str(result.run_dir / "tensorboard")).Reload()
    tags = set(events.Tags()["scalars"])
    assert {"test/accuracy", "test/macro_f1", "cost/wall_seconds"} <= tags
    assert any(t.startswith("train/") for t in tags) and any(t.startswith("eval/") for t in tags)
    assert events.Scalars("test/accuracy")[0].value == pytest.approx(result.metrics["accuracy"])


def test_mlflow_run_in_a_local_store(tmp_path, tiny_bert):
    mlflow = pytest.importorskip("mlflow")
    result = train(load_config(_config(tmp_path, tiny_bert, "mlflow", method="tfidf")))
    store = tmp_path / "runs" / "mlflow.db"
    assert store.is_file()
    mlflow.set_tracking_uri(f"sqlite:///{store}")
    [found] = mlflow.search_runs(experiment_names=["tuneforge"], output_format="list")
    assert found.info.status == "FINISHED" and found.data.tags["tuneforge.status"] == "complete"
    assert found.data.metrics["test_accuracy"] == pytest.approx(result.metrics["accuracy"])
    assert found.data.params["train.method"] == "tfidf" and found.data.tags["tuneforge.run_dir"] == str(result.run_dir)
