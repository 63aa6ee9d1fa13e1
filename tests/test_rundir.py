"""RunDir owns the run folder; old runs load; metadata columns and text transforms travel with the run."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tuneforge.config import load_config
from tuneforge.engine.run import train
from tuneforge.errors import RunError
from tuneforge.models.artifact import ModelMeta
from tuneforge.predict.predictor import Predictor
from tuneforge.rundir import RunDir, find_model_dir

from conftest import DATA, write_config


@pytest.fixture(scope="module")
def tfidf_run(tmp_path_factory):
    return RunDir(train(load_config(write_config(tmp_path_factory.mktemp("rundir"), None, method="tfidf"))).run_dir)


def test_layout_is_spelled_by_rundir(tfidf_run):
    run = tfidf_run
    for path in (
        run.run_file,
        run.config_file,
        run.data_report_file,
        run.metrics_file,
        run.model_dir,
        run.eval_dir,
        run.cost_file,
        run.model_card_file,
        run.split_file("train"),
        run.split_file("validation"),
        run.split_file("test"),
    ):
        assert path.exists(), path
    assert run.info()["task"] == "classify" and run.info()["status"] == "complete"
    assert run.model_for("auto") == run.model_dir == find_model_dir(run.model_dir)
    with pytest.raises(RunError, match=r"no compressed variant 'int8' \(available: original\)"):
        run.model_for("int8")
    with pytest.raises(RunError, match=r"run `tuneforge compress"):
        run.model_for("recommended")


def test_splits_keep_every_column_and_its_type(tfidf_run):
    train_rows = tfidf_run.read_split("train")
    assert {"text", "label", "source", "id"} <= set(train_rows.columns)
    assert train_rows["label"].map(type).eq(str).all() and train_rows["source"].str.contains("reviews_train.csv:").all()
    source = pd.read_csv(DATA / "reviews_train.csv")
    by_id = dict(zip(source["id"].astype(str), source["sentiment"]))  # CSV cells are read as text
    assert all(by_id[row.id] == row.label for row in train_rows.itertuples())  # the id column still names the original row
    assert json.loads(tfidf_run.data_report_file.read_text())["columns"] == ["id"]


def test_text_transforms_are_recorded_and_replayed(tfidf_run):
    predictor = Predictor.load(tfidf_run.path)
    assert predictor.meta.transforms == ["strip_html", "collapse_whitespace"]
    html = "<p>The phone was <b>great</b> &amp;   wonderful.</p>"
    assert predictor._clean([html]) == ["The phone was great & wonderful."]
    assert (predictor.predict_proba([html]) == predictor.predict_proba(["The phone was great & wonderful."])).all()


def test_models_saved_before_tasks_existed_still_load(tfidf_run, tmp_path):
    import shutil

    old = tmp_path / "old-model"
    shutil.copytree(tfidf_run.model_dir, old)
    meta = json.loads((old / "tuneforge.json").read_text())
    for key in ("task", "transforms"):
        meta.pop(key)
    meta["format_version"] = 1
    meta["strip_html"] = False
    (old / "tuneforge.json").write_text(json.dumps(meta))
    loaded = ModelMeta.read(old)
    assert loaded.task == "classify" and loaded.transforms == ["collapse_whitespace"]
    assert Predictor.load(old).predict(["The lamp was awful"])[0].label in loaded.labels


def test_killed_runs_leave_no_temporaries_behind_a_resume_or_compress(tfidf_run, tmp_path):
    import shutil

    run = RunDir(shutil.copytree(tfidf_run.path, tmp_path / "copy"))
    half_model = run.path / ".model.k1ll3d.tmp"
    half_variant = run.compress_dir / ".int8.k1ll3d.tmp"
    for folder in (half_model, half_variant):
        folder.mkdir(parents=True)
        (folder / "tuneforge.json").write_text("{}")
    assert run.variants() == []  # a hidden half-built variant is never offered
    assert sorted(run.remove_stale_temporaries()) == [".int8.k1ll3d.tmp", ".model.k1ll3d.tmp"]
    assert not half_model.exists() and not half_variant.exists() and run.model_dir.is_dir()


def test_a_full_disk_inside_torch_save_is_reported_as_a_resource_error(tmp_path):
    from tuneforge.engine.run import write_failure

    torch_error = RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64320 vs 64208")
    assert "checkpoint could not be written" in write_failure(torch_error, tmp_path)
    assert write_failure(RuntimeError("shapes do not match"), tmp_path) is None
    assert write_failure(OSError(28, "No space left on device"), tmp_path) == "No space left on device"


def test_a_folder_given_as_the_data_file_is_named_as_a_folder(tmp_path):
    from tuneforge.data.read import read_table
    from tuneforge.errors import DataError

    with pytest.raises(DataError, match=r"is a folder, not a data file"):
        read_table(tmp_path)
