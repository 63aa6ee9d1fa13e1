"""`train.method: auto` with `train.budget`: the choice follows the plan, is recorded, and the budget is kept."""

from __future__ import annotations

import time

import pytest

from tuneforge.config import load_config
from tuneforge.engine.run import train
from tuneforge.errors import ConfigError
from tuneforge.rundir import RunDir

from conftest import write_config


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """One calibration cache for the module: each method is measured once, as on a user's machine."""
    return tmp_path_factory.mktemp("auto-cache")


def test_a_roomy_budget_fine_tunes_and_records_why(tiny_bert, tmp_path, monkeypatch, calibrated):
    monkeypatch.setenv("TUNEFORGE_CACHE", str(calibrated))
    config = load_config(write_config(tmp_path, tiny_bert, method="auto", budget="30m", epochs=None))
    result = train(config)
    info = RunDir(result.run_dir).info()
    auto = info["train"]["auto"]
    assert info["method"] == "full" and auto["chosen"]["method"] == "full"
    assert auto["chosen"]["epochs"] == 3.0 and auto["chosen"]["max_rows"] is None  # the cap when train.epochs is unset
    assert auto["max_length"] <= 32 and auto["max_length"] % 8 == 0  # from the data, never above the config's
    assert [c["method"] for c in auto["candidates"]] == ["tfidf", "head", "full"]
    assert "full fine-tuning fits" in auto["why"]
    saved = RunDir(result.run_dir).read_config()
    assert saved.train.method == "full" and saved.train.budget is None  # resume trains the chosen config, no replanning
    assert "train.method=auto" in (result.run_dir / "model_card.md").read_text()


def test_a_budget_nothing_fits_in_falls_back_to_tfidf(tiny_bert, tmp_path, monkeypatch, calibrated):
    monkeypatch.setenv("TUNEFORGE_CACHE", str(calibrated))
    config = load_config(write_config(tmp_path, tiny_bert, method="auto", budget="2s"))
    result = train(config)
    auto = RunDir(result.run_dir).info()["train"]["auto"]
    assert auto["chosen"]["method"] == "tfidf" and "no transformer method fits" in auto["why"]


def test_the_deadline_stops_training_cleanly_and_keeps_a_model(tiny_bert, tmp_path):
    from tuneforge.engine.budget import DeadlineCallback

    record: dict = {}
    config = load_config(write_config(tmp_path, tiny_bert, epochs=5, batch_size=4))
    result = train(config, callbacks=[DeadlineCallback(time.monotonic(), record)])  # already due: stop after the first step
    assert record["stopped_for_budget_at_step"] == 1
    assert result.train_info["global_step"] == 1
    assert (result.run_dir / "model" / "tuneforge.json").is_file() and result.metrics["accuracy"] >= 0


def test_auto_needs_a_budget_and_budgets_are_durations(tmp_path):
    config = load_config(write_config(tmp_path, None, method="auto"))
    with pytest.raises(ConfigError, match="train.method=auto needs a time budget"):
        train(config)
    with pytest.raises(ConfigError, match="not a duration"):
        load_config(write_config(tmp_path, None, method="auto", budget="soon"))


@pytest.mark.slow
def test_a_two_minute_budget_is_kept_on_real_data(tmp_path):
    config = load_config(
        base={"data": {"train": "bundled:bbc-news"}, "train": {"method": "auto", "budget": "2m"}, "output": {"dir": str(tmp_path)}}
    )
    started = time.monotonic()
    result = train(config)
    took = time.monotonic() - started
    auto = result.train_info["auto"]
    assert took <= 1.10 * 120, f"budget 120 s, took {took:.0f} s: {auto}"
    assert result.metrics["accuracy"] > 0.8  # whatever was chosen, it learned the topics
