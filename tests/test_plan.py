"""`tuneforge plan`: durations, simulated padding, the cached calibration, and a plan for every method."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tuneforge.config import load_config
from tuneforge.durations import parse_duration
from tuneforge.errors import ConfigError
from tuneforge.plan import calibrate as calibrate_module
from tuneforge.plan import make_plan
from tuneforge.plan.batches import file_order_batches, sorted_batches, training_batches

from conftest import run_cli, write_config


def test_durations_read_as_people_write_them():
    assert parse_duration("90s") == 90 and parse_duration("30m") == 1800 and parse_duration("1.5h") == 5400
    assert parse_duration("1h30m") == 5400 and parse_duration("45") == 45 and parse_duration("30d") == 30 * 86400
    for bad in ("soon", "30x", "m30", ""):
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(bad)


def test_grouping_by_length_pads_far_less_than_plain_shuffling():
    rng = np.random.default_rng(0)
    lengths = np.clip(rng.lognormal(2.5, 0.8, size=5000).astype(int), 3, 128)
    plain = training_batches(lengths, 16, grouped=False)
    grouped = training_batches(lengths, 16, grouped=True)
    assert len(plain) == len(grouped) == 313  # ceil(5000 / 16): every text is in exactly one batch
    assert grouped.sum() < 0.7 * plain.sum()
    assert sorted_batches(lengths, 64).sum() <= file_order_batches(lengths, 64).sum()
    assert sorted_batches(lengths, 64)[0] == lengths.max()


def test_calibration_is_measured_once_and_reused(tiny_bert, monkeypatch, tmp_path):
    monkeypatch.setenv("TUNEFORGE_CACHE", str(tmp_path))
    monkeypatch.setattr(calibrate_module, "machine_busy", lambda: False)
    calls = []
    real = calibrate_module._measure_in_subprocess
    monkeypatch.setattr(calibrate_module, "_measure_in_subprocess", lambda *a: calls.append(a) or real(*a))
    spec = {"method": "full", "batch_size": 4, "eval_batch_size": 8, "max_length": 32, "labels": 3, "lora": {}}
    first = calibrate_module.calibration(str(tiny_bert), spec)
    again = calibrate_module.calibration(str(tiny_bert), spec)
    assert len(calls) == 1 and first == again
    assert set(first["train_step"]) == {"16", "32"} and all(v > 0 for v in first["train_step"].values())
    assert first["peak_rss_mb"] > 100  # a whole process with torch loaded
    calibrate_module.calibration(str(tiny_bert), {**spec, "batch_size": 8})  # another batch size is another measurement
    assert len(calls) == 2

    busy = {**spec, "eval_batch_size": 4}
    monkeypatch.setattr(calibrate_module, "machine_busy", lambda: True)
    assert calibrate_module.calibration(str(tiny_bert), busy)["busy"] is True
    assert calibrate_module.calibration(str(tiny_bert), busy)["busy"] is True and len(calls) == 3  # still busy: reused
    monkeypatch.setattr(calibrate_module, "machine_busy", lambda: False)
    assert calibrate_module.calibration(str(tiny_bert), busy)["busy"] is False and len(calls) == 4  # idle now: measured again


@pytest.fixture(scope="module")
def plan_cache(tmp_path_factory):
    """One calibration cache for the plan tests: each method is measured once, as on a user's machine."""
    return tmp_path_factory.mktemp("plan-cache")


def test_a_plan_covers_every_method_and_says_what_fits(tiny_bert, tmp_path, monkeypatch, capsys, plan_cache):
    monkeypatch.setenv("TUNEFORGE_CACHE", str(plan_cache))
    config = load_config(write_config(tmp_path, tiny_bert, epochs=2, batch_size=8))
    plan = make_plan(config, budget_seconds=3600)
    assert [m.method for m in plan.methods] == ["tfidf", "lstm", "head", "lora", "full"]
    assert plan.data["rows"]["train"] > 0 and plan.data["labels"] == 3
    for m in plan.methods:
        assert m.wall_seconds > 0 and m.peak_rss_mb > 0 and m.fits_budget is True
        assert m.cost_usd == pytest.approx(m.wall_seconds / 3600 * config.cost.usd_per_hour, abs=1e-4)
    full = plan.methods[4]
    assert {"training_steps", "validation_evaluations", "probe_embeddings", "tfidf_floor", "test_predictions"} <= set(full.breakdown)
    assert full.breakdown["tfidf_floor"] > 0 and "tfidf_floor" not in plan.methods[2].breakdown  # head has no floor
    lstm = plan.methods[1]
    assert lstm.epochs == 2 and {"training_steps", "validation_evaluations", "test_predictions"} <= set(lstm.breakdown)
    assert make_plan(config, methods=["full"], budget_seconds=0.5).methods[0].fits_budget is False

    code, stdout, stderr = run_cli(monkeypatch, capsys, "plan", tmp_path / "config.yaml", "--budget", "1s", "--methods", "tfidf,full")
    assert code == 0, stderr
    assert "no: time" in stdout and "fits the budget:" in stderr
    code, stdout, _ = run_cli(monkeypatch, capsys, "plan", tmp_path / "config.yaml", "--methods", "tfidf", "--json")
    assert code == 0 and json.loads(stdout)["methods"][0]["method"] == "tfidf"
    code, _, stderr = run_cli(monkeypatch, capsys, "plan", tmp_path / "config.yaml", "--budget", "soon")
    assert code == 2 and "not a duration" in stderr


def test_epochs_left_to_early_stopping_are_planned_at_the_cap_and_said(tiny_bert, tmp_path, monkeypatch, plan_cache):
    monkeypatch.setenv("TUNEFORGE_CACHE", str(plan_cache))
    config = load_config(write_config(tmp_path, tiny_bert, epochs=None, max_epochs=4))
    full = make_plan(config, methods=["full"]).methods[0]
    assert full.epochs == 4 and any("early stopping" in n for n in full.notes)


def test_tasks_without_a_plan_are_told_so(tmp_path):
    config = load_config(write_config(tmp_path, None, method="tfidf"), ["task=entities"])
    with pytest.raises(ConfigError, match="tuneforge plan covers tasks"):
        make_plan(config)
