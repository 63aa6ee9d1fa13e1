"""Checkpoints and --resume: a crash mid-save is never picked up, and resuming reproduces the result."""

import json
import sys

import pytest

from tuneforge.config import load_config
from tuneforge.engine.checkpoints import MARKER, CompleteCheckpointMarker, checkpoints
from tuneforge.engine.run import train
from tuneforge.rundir import RunDir

from conftest import write_config

SETTINGS = dict(method="full", epochs=3, checkpoint_every=2, keep_checkpoints=50, early_stopping_patience=None)


class SimulatedCrash(RuntimeError):
    pass


def test_crash_during_checkpoint_then_resume_matches_uninterrupted_run(tiny_bert, tmp_path, monkeypatch, capsys):
    reference = train(load_config(write_config(tmp_path / "a", tiny_bert, **SETTINGS)))
    steps = RunDir(reference.run_dir).info()["train"]["global_step"]
    assert steps == 18  # 48 training rows / batch 8 = 6 steps x 3 epochs

    original = CompleteCheckpointMarker.on_save

    def crash_at_step_10(self, args, state, control, **kwargs):
        if state.global_step == 10:  # checkpoint-10 files are on disk, its marker is not
            raise SimulatedCrash("power cut while saving")
        return original(self, args, state, control, **kwargs)

    monkeypatch.setattr(CompleteCheckpointMarker, "on_save", crash_at_step_10)
    with pytest.raises(SimulatedCrash):
        train(load_config(write_config(tmp_path / "b", tiny_bert, **SETTINGS)))
    monkeypatch.setattr(CompleteCheckpointMarker, "on_save", original)
    run_dir = next((tmp_path / "b" / "runs").iterdir())
    assert RunDir(run_dir).info()["status"] == "failed"
    assert not (run_dir / "model").exists()
    saved = dict(checkpoints(run_dir / "checkpoints"))
    assert 10 in saved and not (saved[10] / MARKER).exists() and (saved[8] / MARKER).exists()

    from tuneforge.cli import main

    monkeypatch.setattr(sys, "argv", ["tuneforge", "train", "--resume", str(run_dir)])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 0, capsys.readouterr().err
    info = RunDir(run_dir).info()
    assert info["status"] == "complete"
    assert info["resumed_from"].endswith("checkpoint-8")
    assert info["train"]["global_step"] == steps
    assert all((path / MARKER).exists() for _, path in checkpoints(run_dir / "checkpoints"))
    resumed = json.loads((run_dir / "eval" / "metrics.json").read_text())
    # Same seed, RNG and data position restored from the checkpoint: same model, same scores.
    assert resumed["accuracy"] == pytest.approx(reference.metrics["accuracy"], abs=1e-9)
    assert resumed["log_loss"] == pytest.approx(reference.metrics["log_loss"], rel=1e-4)


def test_resume_of_a_finished_run_does_nothing(tmp_path):
    result = train(load_config(write_config(tmp_path, None, method="tfidf")))
    again = train(None, resume=result.run_dir)
    assert again.resumed and again.run_dir == result.run_dir
    assert again.metrics["accuracy"] == result.metrics["accuracy"]


def test_resume_of_a_non_run_is_a_clear_error(tmp_path):
    from tuneforge.errors import RunError

    with pytest.raises(RunError, match="not a tuneforge run directory"):
        train(None, resume=tmp_path)
