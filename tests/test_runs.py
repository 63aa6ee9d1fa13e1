import os

import pytest

from tuneforge.atomic import atomic_dir, atomic_write_text
from tuneforge.rundir import RunDir, list_runs


def test_atomic_write_leaves_old_file_when_rename_fails(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    atomic_write_text(target, "old")

    def boom(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary left behind


def test_atomic_dir_appears_only_when_complete(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "weights.safetensors").write_text("half")
        raise RuntimeError("crash while saving")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    with atomic_dir(target) as tmp:
        (tmp / "weights.safetensors").write_text("whole")
    assert (target / "weights.safetensors").read_text() == "whole"
    with atomic_dir(target) as tmp:  # replacing an existing folder swaps it whole
        (tmp / "other").write_text("v2")
    assert sorted(p.name for p in target.iterdir()) == ["other"]


def test_run_dirs_are_unique_and_listed_newest_first(tmp_path):
    a = RunDir.create(tmp_path, "full-data")
    b = RunDir.create(tmp_path, "full-data")
    assert a.path != b.path and a.name.startswith("full-data-")
    a.update(status="complete", method="full", started="2026-01-01T00:00:00", metrics={"macro_f1": 0.5})
    b.update(status="failed", method="head", started="2026-02-01T00:00:00")
    runs = list_runs(tmp_path)
    assert [r.path for r in runs] == [b.path, a.path]
    assert runs[1].metric == 0.5 and runs[0].metric is None
