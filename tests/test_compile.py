"""`train.compile`: a compiled run trains, saves plain weights that reload to the same scores, and resumes."""

from __future__ import annotations

import json
import sys

import pytest
from safetensors import safe_open

from tuneforge.config import load_config
from tuneforge.engine.callbacks import MetricsFileLogger
from tuneforge.engine.compiling import named_compile_failures
from tuneforge.engine.run import train
from tuneforge.errors import ConfigError
from tuneforge.predict.predictor import Predictor
from tuneforge.rundir import RunDir

from conftest import write_config

SETTINGS = dict(method="full", epochs=2, checkpoint_every=3, compile=True, keep="fine-tuned", early_stopping_patience=None)


class SimulatedCrash(RuntimeError):
    pass


def test_compiled_run_saves_clean_weights_reloads_to_its_scores_and_resumes(tiny_bert, tmp_path, monkeypatch, capsys):
    original = MetricsFileLogger.on_log

    def crash_after_step_4(self, args, state, control, logs=None, **kwargs):
        if state.global_step >= 4:
            raise SimulatedCrash("killed mid-run")
        return original(self, args, state, control, logs=logs, **kwargs)

    monkeypatch.setattr(MetricsFileLogger, "on_log", crash_after_step_4)
    with pytest.raises(SimulatedCrash):
        train(load_config(write_config(tmp_path, tiny_bert, **SETTINGS)))
    monkeypatch.setattr(MetricsFileLogger, "on_log", original)
    run_dir = next((tmp_path / "runs").iterdir())
    assert (run_dir / "checkpoints" / "checkpoint-3").is_dir() and not (run_dir / "model").exists()

    from tuneforge.cli import main

    monkeypatch.setattr(sys, "argv", ["tuneforge", "train", "--resume", str(run_dir)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 0, capsys.readouterr().err
    info = RunDir(run_dir).info()
    assert info["status"] == "complete" and info["resumed_from"].endswith("checkpoint-3")
    record = info["train"]
    assert record["global_step"] == 12  # 48 training rows / batch 8 = 6 steps x 2 epochs
    assert record["compile"] is True and record["pin_memory"] is False and record["device"] == "cpu"
    assert record["throughput"]["first_step_seconds"] > 0 and record["throughput"]["median_step_seconds"] > 0
    assert "torch.compile" in (run_dir / "model_card.md").read_text(encoding="utf-8")

    with safe_open(str(run_dir / "model" / "model.safetensors"), "pt") as weights:
        names = list(weights.keys())
    assert names and not any("_orig_mod" in n for n in names)  # the compiled wrapper's prefix never reaches the file
    for checkpoint in (run_dir / "checkpoints").glob("checkpoint-*"):
        with safe_open(str(checkpoint / "model.safetensors"), "pt") as weights:
            assert not any("_orig_mod" in n for n in weights.keys())  # noqa: SIM118 - safe_open is not iterable

    # the saved model, loaded cold and uncompiled, scores validation exactly as the compiled training measured it
    from sklearn.metrics import f1_score

    validation = [json.loads(line) for line in (run_dir / "splits" / "validation.jsonl").read_text().splitlines()]
    predicted = [p.label for p in Predictor.load(run_dir).predict([row["text"] for row in validation])]
    truth = [row["label"] for row in validation]
    assert f1_score(truth, predicted, average="macro") == pytest.approx(record["best_validation_macro_f1"], abs=1e-6)


def test_a_compile_failure_names_the_setting():
    import torch._dynamo.exc
    import torch._inductor.exc

    expected = r"train.compile=true: torch.compile failed .*InvalidCxxCompiler.*train.compile=false"
    with pytest.raises(ConfigError, match=expected), named_compile_failures(True):
        raise torch._inductor.exc.InvalidCxxCompiler()
    with pytest.raises(ConfigError, match="Unsupported: no such op"), named_compile_failures(True):
        raise torch._dynamo.exc.Unsupported("no such op")
    with pytest.raises(ValueError, match="unrelated"), named_compile_failures(True):  # other errors pass through untouched
        raise ValueError("unrelated")


def test_pinned_memory_only_for_cuda(monkeypatch, tmp_path):
    from tuneforge.engine import args as args_module

    config = load_config(write_config(tmp_path, None, method="full"))
    built = args_module.run_training_arguments(config.train, tmp_path / "out", n_train=100)
    assert built.dataloader_pin_memory is False and built.torch_compile is False
    monkeypatch.setattr(args_module, "training_device", lambda: "mps")
    monkeypatch.setattr(args_module, "training_precision", lambda requested: "fp32")
    config = load_config(write_config(tmp_path, None, method="full", compile=True))
    built = args_module.run_training_arguments(config.train, tmp_path / "out", n_train=100)
    assert built.dataloader_pin_memory is False and built.torch_compile is True
    monkeypatch.setattr(args_module, "training_device", lambda: "cuda")
    assert args_module.run_training_arguments(config.train, tmp_path / "out", n_train=100).dataloader_pin_memory is True
