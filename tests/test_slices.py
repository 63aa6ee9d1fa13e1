"""Fairness slices: per-group metrics through fairlearn, largest gaps, small groups flagged; wired into classify evaluation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from tuneforge.config import load_config
from tuneforge.engine.run import train
from tuneforge.errors import DataError
from tuneforge.tasks.classify.slices import length_groups, slice_groups, slice_metrics


def test_per_group_metrics_gaps_and_small_groups():
    # group a: always right; group b: always wrong; group c: too small to judge
    y_true = np.array([0, 1] * 20 + [0, 1] * 20 + [1])
    right = np.eye(2)[y_true[:40]]
    wrong = np.eye(2)[1 - y_true[40:80]]
    probs = np.vstack([right, wrong, [[0.5, 0.5]]])
    groups = {"region": pd.Series(["a"] * 40 + ["b"] * 40 + ["c"])}
    out = slice_metrics(y_true, probs, ["no", "yes"], groups, min_rows=10)["region"]
    assert out["groups"]["a"]["accuracy"] == 1.0 and out["groups"]["b"]["accuracy"] == 0.0
    assert out["groups"]["c"]["small"] and out["judged_groups"] == 2
    assert out["largest_gap"]["accuracy"] == 1.0
    assert out["groups"]["a"]["selected_yes"] == 0.5 and out["groups"]["b"]["selected_yes"] == 0.5
    assert out["equalized_odds_difference"] == 1.0  # a: TPR 1, FPR 0; b: TPR 0, FPR 1
    assert out["demographic_parity_difference"] == 0.0  # both predict "yes" half the time


def test_length_quartiles_and_unknown_columns_name_what_exists():
    texts = pd.Series(["x" * n for n in range(1, 101)])
    assert length_groups(texts).nunique() == 4
    frame = pd.DataFrame({"text": ["a", "b"], "label": ["x", "y"], "source": ["f:2", "f:3"], "region": ["n", "s"]})
    with pytest.raises(DataError, match=r"evaluate.slices: no column 'country'.*region"):
        slice_groups(frame, ["country"])


def test_a_run_writes_slices_for_a_named_metadata_column(tmp_path):
    rows = []
    for i in range(120):
        good = i % 2 == 0
        rows.append(
            {
                "text": f"review {i}: {'great value' if good else 'awful quality'}",
                "label": "pos" if good else "neg",
                "region": "north" if i % 3 else "south",
            }
        )
    pd.DataFrame(rows).to_csv(tmp_path / "r.csv", index=False)
    config = {
        "data": {"train": str(tmp_path / "r.csv")},
        "train": {"method": "tfidf"},
        "evaluate": {"slices": ["region"], "min_slice_rows": 5},
        "output": {"dir": str(tmp_path / "runs")},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    result = train(load_config(tmp_path / "c.yaml"))
    slices = json.loads((result.run_dir / "eval" / "slices.json").read_text())
    assert set(slices) == {"region", "text_length", "label"}
    assert set(slices["region"]["groups"]) == {"north", "south"}
    assert sum(g["n"] for g in slices["region"]["groups"].values()) == result.metrics["n"]
    assert "## Slices" in (result.run_dir / "model_card.md").read_text()
