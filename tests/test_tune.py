"""Hyper-parameter search: space validation, trials as runs, failures, pruning, resume and sharing."""

import csv
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from tuneforge.config import load_config
from tuneforge.engine.run import train
from tuneforge.errors import ConfigError
from tuneforge.rundir import RunDir
from tuneforge.tune.study import tune

from conftest import write_config

TFIDF_SPACE = {"train.tfidf.c": {"low": 0.1, "high": 100.0, "log": True}, "train.tfidf.ngram_max": {"choices": [1, 2]}}


def _config(tmp_path, model=None, space=None, **tune_settings):
    path = write_config(tmp_path, model, method="tfidf" if model is None else "full", epochs=2)
    raw = yaml.safe_load(path.read_text())
    raw["tune"] = {"space": space or TFIDF_SPACE, "trials": 4, "seed": 0, **tune_settings}
    path.write_text(yaml.safe_dump(raw))
    return path


def _rows(study_dir):
    with open(study_dir / "trials.csv") as fh:
        return list(csv.DictReader(fh))


def test_study_writes_trials_best_yaml_plot_and_importances(tmp_path):
    result = tune(load_config(_config(tmp_path)))
    assert result.finished == 4 and result.failed == 0
    rows = _rows(result.study_dir)
    assert [r["state"] for r in rows] == ["COMPLETE"] * 4
    assert all(float(r["wall_seconds"]) > 0 and float(r["peak_rss_mb"]) > 0 for r in rows)
    assert len({r["run_dir"] for r in rows}) == 4 and all(RunDir(r["run_dir"]).info()["status"] == "complete" for r in rows)
    assert (result.study_dir / "history.png").read_bytes()[:4] == b"\x89PNG"
    assert set(yaml.safe_load((result.study_dir / "importances.json").read_text()) or {}) <= set(TFIDF_SPACE)
    best = load_config(result.files["best_yaml"])  # `tuneforge train best.yaml` accepts it as is
    assert best.train.tfidf.c == pytest.approx(result.best_params["train.tfidf.c"])
    assert best.train.tfidf.ngram_max == result.best_params["train.tfidf.ngram_max"]
    assert train(best).metrics["n"] == 6
    # rerunning the finished study adds nothing
    again = tune(load_config(_config(tmp_path)))
    assert again.finished == 4 and len(_rows(again.study_dir)) == 4


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"train.learning_rat": {"low": 1e-5, "high": 1e-3}}, r"tune\.space\.train\.learning_rat: .*unknown setting"),
        ({"train.epochs": {"low": -1, "high": 3}}, r"tune\.space\.train\.epochs: value -1"),
        ({"train.method": {"choices": ["full", "magic"]}}, r"tune\.space\.train\.method: value 'magic'"),
        ({"output.dir": {"choices": ["a"]}}, "cannot be searched"),
    ],
)
def test_bad_space_names_the_setting(tmp_path, space, message):
    with pytest.raises(ConfigError, match=message):
        tune(load_config(_config(tmp_path, space=space)))


def test_bad_space_shape_fails_at_config_load(tmp_path):
    with pytest.raises(ConfigError, match=r"tune\.space\.train\.tfidf\.c.*low .* must be below high"):
        load_config(_config(tmp_path, space={"train.tfidf.c": {"low": 5, "high": 1}}))
    with pytest.raises(ConfigError, match="grid sampler needs 'choices' or a 'step'"):
        tune(load_config(_config(tmp_path, sampler="grid")))


def test_a_failing_trial_is_recorded_and_the_study_goes_on(tmp_path, tiny_bert):
    space = {"model.name": {"choices": [str(tiny_bert), str(tmp_path / "missing-model")]}}
    config = load_config(_config(tmp_path, tiny_bert, space=space, sampler="grid", trials=2, pruner="none"))
    result = tune(config)
    rows = _rows(result.study_dir)
    assert sorted(r["state"] for r in rows) == ["COMPLETE", "FAIL"]
    assert result.finished == 1 and result.failed == 1


def test_transformer_trials_report_intermediate_scores_for_pruning(tmp_path, tiny_bert):
    import optuna

    space = {"train.learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}}
    result = tune(load_config(_config(tmp_path, tiny_bert, space=space, trials=2, pruner="median")))
    storage = f"sqlite:///{result.study_dir / 'study.db'}"
    study = optuna.load_study(study_name=result.study_dir.name, storage=storage)
    assert all(len(t.intermediate_values) == 2 for t in study.trials)  # one per epoch


def test_pruned_run_is_marked_pruned(tmp_path, tiny_bert):
    import optuna

    from tuneforge.tune.pruning import PruningCallback

    class AlwaysPrune:
        def report(self, value, step):
            self.reported = (value, step)

        def should_prune(self):
            return True

    trial = AlwaysPrune()
    with pytest.raises(optuna.TrialPruned):
        train(load_config(write_config(tmp_path, tiny_bert, method="full", epochs=2)), callbacks=[PruningCallback(trial, "macro_f1")])
    run_dir = next((tmp_path / "runs").iterdir())
    assert RunDir(run_dir).info()["status"] == "pruned"
    assert trial.reported[1] == 6  # pruned after the first epoch's evaluation


def _tune_cmd(config, trials):
    return [sys.executable, "-m", "tuneforge.cli", "-q", "tune", str(config), "--trials", str(trials)]


def test_killed_study_continues_to_the_requested_trials(tmp_path, tiny_bert):
    space = {"train.learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}}
    config = _config(tmp_path, tiny_bert, space=space, trials=4, pruner="none")
    study_dir = tmp_path / "runs" / "study-full-reviews_train"
    proc = subprocess.Popen(_tune_cmd(config, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    killed = False
    while time.time() < deadline and proc.poll() is None:
        trials_dir = study_dir / "trials"
        runs = sorted(trials_dir.iterdir()) if trials_dir.exists() else []
        statuses = [RunDir(r).info().get("status") for r in runs if (r / "run.json").exists()]
        if statuses.count("complete") >= 1 and "running" in statuses:
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.05)
    proc.wait(30)
    assert killed, "study finished before it could be killed"
    done = subprocess.run(_tune_cmd(config, 4), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = _rows(study_dir)
    finished = [r for r in rows if r["state"] in ("COMPLETE", "PRUNED")]
    assert len(finished) == 4
    assert any(r["state"] == "FAIL" and "worker process died" in r["note"] for r in rows)


def test_two_processes_share_one_sqlite_study_without_duplicates(tmp_path):
    config = _config(tmp_path, trials=6)
    config_path = config
    raw = yaml.safe_load(config_path.read_text())
    raw["tune"].pop("seed")  # each worker samples differently
    config_path.write_text(yaml.safe_dump(raw))
    procs = [subprocess.Popen(_tune_cmd(config_path, 6), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-1500:] for o in outputs]
    rows = _rows(tmp_path / "runs" / "study-tfidf-reviews_train")
    finished = [r for r in rows if r["state"] == "COMPLETE"]
    assert len(finished) == 6
    assert len({r["number"] for r in rows}) == len(rows)
    assert len({r["run_dir"] for r in finished}) == 6
    assert all(os.path.isdir(r["run_dir"]) for r in finished)
