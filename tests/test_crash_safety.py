"""Training that survives kill -9, damaged checkpoints and a full disk."""

import errno
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from tuneforge.config import load_config
from tuneforge.engine.checkpoints import MARKER, checkpoints, verify_checkpoint
from tuneforge.engine.run import train
from tuneforge.errors import ResourceError
from tuneforge.rundir import RunDir

from conftest import write_config

SETTINGS = dict(method="full", epochs=3, checkpoint_every=2, keep_checkpoints=50, early_stopping_patience=None)


def _interrupted_copy_state(run_dir):
    """What a crash leaves: no model, no eval, status not complete."""
    import shutil

    shutil.rmtree(run_dir / "model", ignore_errors=True)
    shutil.rmtree(run_dir / "eval", ignore_errors=True)
    info = json.loads((run_dir / "run.json").read_text())
    info["status"] = "running"
    (run_dir / "run.json").write_text(json.dumps(info))


def test_corrupt_newest_checkpoint_falls_back_to_the_previous_one(tiny_bert, tmp_path, caplog):
    result = train(load_config(write_config(tmp_path, tiny_bert, **SETTINGS)))
    run_dir = result.run_dir
    saved = dict(checkpoints(run_dir / "checkpoints"))
    newest, previous = saved[max(saved)], saved[max(saved) - 2]
    weights = newest / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: size unchanged, content wrong
    weights.write_bytes(bytes(data))
    assert "checksum" in verify_checkpoint(newest)
    assert verify_checkpoint(previous) is None
    _interrupted_copy_state(run_dir)
    resumed = train(None, resume=run_dir)
    info = RunDir(run_dir).info()
    assert info["resumed_from"] == str(previous)
    assert info["status"] == "complete" and info["train"]["global_step"] == 18
    assert "does not match its checksum" in caplog.text
    assert resumed.metrics["n"] == 6


def test_disk_full_during_checkpoint_is_a_clear_error_and_keeps_the_previous(tiny_bert, tmp_path, monkeypatch):
    import transformers.modeling_utils as modeling_utils

    real_save = modeling_utils.safe_save_file

    def flaky_save(tensors, filename, *args, **kwargs):
        if "checkpoint-10" in str(filename):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(modeling_utils, "safe_save_file", flaky_save)
    with pytest.raises(ResourceError) as info:
        train(load_config(write_config(tmp_path, tiny_bert, **SETTINGS)))
    message = str(info.value)
    run_dir = next((tmp_path / "runs").iterdir())
    assert "No space left on device" in message and f"tuneforge train --resume {run_dir}" in message
    saved = dict(checkpoints(run_dir / "checkpoints"))
    assert verify_checkpoint(saved[8]) is None
    assert verify_checkpoint(saved[10]) is not None
    assert RunDir(run_dir).info()["status"] == "failed"
    monkeypatch.setattr(modeling_utils, "safe_save_file", real_save)
    train(None, resume=run_dir)
    assert RunDir(run_dir).info()["resumed_from"].endswith("checkpoint-8")


def _big_reviews(path, rows=1500):
    words = {
        "positive": ["great", "excellent", "love", "wonderful"],
        "negative": ["terrible", "awful", "hate", "broken"],
        "neutral": ["okay", "average", "arrived", "package"],
    }
    labels = list(words)
    records = []
    for i in range(rows):
        label = labels[i % 3]
        w = words[label]
        records.append({"review": f"The phone was {w[i % 4]} and {w[(i // 4) % 4]} {i}", "sentiment": label})
    pd.DataFrame(records).to_csv(path, index=False)
    return path


def _cli(*args):
    return [sys.executable, "-m", "tuneforge.cli", "-q", *map(str, args)]


def test_kill_9_mid_epoch_then_resume_matches_uninterrupted_run(tiny_bert, tmp_path):
    data = _big_reviews(tmp_path / "big.csv")
    settings = dict(method="full", epochs=2, batch_size=16, checkpoint_every=20, keep_checkpoints=3, early_stopping_patience=None)
    overrides = [f"data.train={data}"]
    reference = train(load_config(write_config(tmp_path / "ref", tiny_bert, **settings), overrides))
    ref_steps = RunDir(reference.run_dir).info()["train"]["global_step"]
    assert ref_steps == 150  # 1,200 training rows / 16 = 75 steps x 2 epochs

    config = write_config(tmp_path / "killed", tiny_bert, **settings)
    proc = subprocess.Popen(_cli("train", config, "--set", overrides[0]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs_dir = tmp_path / "killed" / "runs"
    killed_after = None
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        folders = list(runs_dir.glob("*/checkpoints")) if runs_dir.exists() else []
        done = [step for step, path in checkpoints(folders[0])] if folders else []
        marked = [s for s in done if (folders[0] / f"checkpoint-{s}" / MARKER).exists()]
        if marked and max(marked) >= 40:  # mid-epoch 1 (an epoch is 75 steps)
            os.kill(proc.pid, signal.SIGKILL)
            killed_after = max(marked)
            break
        time.sleep(0.02)
    proc.wait(30)
    assert killed_after is not None, "training finished or stalled before it could be killed"
    assert proc.returncode == -signal.SIGKILL
    run_dir = next(runs_dir.iterdir())
    assert not (run_dir / "model").exists()

    done = subprocess.run(_cli("train", "--resume", run_dir), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == str(run_dir)
    info = RunDir(run_dir).info()
    resumed_step = int(info["resumed_from"].rsplit("-", 1)[1])
    assert resumed_step >= killed_after  # at most one checkpoint interval of work lost
    assert info["train"]["global_step"] == ref_steps
    resumed = json.loads((run_dir / "eval" / "metrics.json").read_text())
    # Tolerance: identical on this CPU; allow float noise from thread scheduling elsewhere.
    assert resumed["accuracy"] == pytest.approx(reference.metrics["accuracy"], abs=0.01)
    assert resumed["log_loss"] == pytest.approx(reference.metrics["log_loss"], rel=0.01)
