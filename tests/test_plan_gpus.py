"""`tuneforge plan`'s GPU projection: the editable table, the arithmetic, the memory fit, the CLI section."""

from __future__ import annotations

import json

import pytest

from tuneforge.errors import ConfigError
from tuneforge.plan.estimate import MethodPlan
from tuneforge.plan.gpus import bundled_table_path, load_gpu_table
from tuneforge.plan.project import ModelShape, gpu_memory_gb, model_shape, project

from conftest import run_cli, write_config

TWO_GPUS = """
assumptions:
  efficiency: 0.5
  train_step_overhead_ms: 10
  forward_overhead_ms: 2
  reserved_gb: 1.0
gpus:
  - {name: small, memory_gb: 1.0, tflops: 10, usd_per_hour: 36}
  - {name: big, memory_gb: 2, tflops: 10, usd_per_hour: 0}
"""


def test_the_bundled_table_loads_and_a_user_file_replaces_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "none"))
    bundled = load_gpu_table()
    assert bundled.source == str(bundled_table_path())
    assert {"T4", "A100-80GB", "H100-80GB"} <= {g.name for g in bundled.gpus}
    assert all(g.memory_gb > 0 and g.tflops > 0 and g.usd_per_hour > 0 for g in bundled.gpus)
    assert 0 < bundled.efficiency <= 1

    user = tmp_path / "config" / "tuneforge" / "gpus.yaml"
    user.parent.mkdir(parents=True)
    user.write_text("gpus:\n  - {name: mine, memory_gb: 12, tflops: 30, usd_per_hour: 0.2}\n", encoding="utf-8")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    mine = load_gpu_table()
    assert [g.name for g in mine.gpus] == ["mine"] and mine.source == str(user)
    assert mine.efficiency == bundled.efficiency  # assumptions left out keep their defaults

    explicit = tmp_path / "two.yaml"
    explicit.write_text(TWO_GPUS, encoding="utf-8")
    assert [g.name for g in load_gpu_table(explicit).gpus] == ["small", "big"]  # --gpus wins over the user file


@pytest.mark.parametrize(
    "text, message",
    [
        ("gpus: [", "not a valid YAML file"),
        ("gpu: []", "unknown key gpu"),
        ("gpus: []", "'gpus' must list at least one GPU type"),
        ("gpus:\n  - {name: X, memory_gb: 16, tflops: 65}", r"gpus entry 1 \('X'\): missing usd_per_hour"),
        ("gpus:\n  - {name: X, memory_gb: 16, tflops: 65, usd_per_hour: 1, watts: 70}", "unknown watts"),
        ("gpus:\n  - {name: X, memory_gb: 16, tflops: fast, usd_per_hour: 1}", r"gpus entry 1 \('X'\): tflops must be a number"),
        ("gpus:\n  - {name: X, memory_gb: 0, tflops: 65, usd_per_hour: 1}", "memory_gb must be above 0"),
        (
            "gpus:\n  - {name: X, memory_gb: 8, tflops: 6, usd_per_hour: 1}\n  - {name: X, memory_gb: 8, tflops: 6, usd_per_hour: 1}",
            "X listed more than once",
        ),
        ("assumptions: {efficiency: 2}\ngpus:\n  - {name: X, memory_gb: 8, tflops: 6, usd_per_hour: 1}", r"efficiency must be in \(0, 1\]"),
        ("assumptions: {speedup: 2}\ngpus:\n  - {name: X, memory_gb: 8, tflops: 6, usd_per_hour: 1}", "unknown field speedup"),
    ],
)
def test_a_bad_table_names_file_entry_and_field(tmp_path, text, message):
    path = tmp_path / "gpus.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as info:
        load_gpu_table(path)
    assert str(path) in str(info.value)
    with pytest.raises(ConfigError, match="--gpus: .* is not a file"):
        load_gpu_table(tmp_path / "missing.yaml")


def test_projection_arithmetic_by_hand(tmp_path):
    path = tmp_path / "two.yaml"
    path.write_text(TWO_GPUS, encoding="utf-8")
    table = load_gpu_table(path)
    shape = ModelShape(params=2_000_000, dense_params=1_000_000, layers=2, hidden=100, heads=2)
    plan = MethodPlan(
        method="full", epochs=1, wall_seconds=25, cpu_seconds=50, peak_rss_mb=1, cost_usd=0,
        breakdown={"startup": 5.0, "training_steps": 20.0},
        compute={"training_steps": {"kind": "train", "batches": 10, "positions": 1e6, "positions_sq": 3.2e7}},
    )  # fmt: skip
    small, big = project(plan, shape, table, memory_gb=0.5, budget_s=6.0)
    # flops: 6 x 1e6 x 1e6 (linear, full) + 3 x 4 x 2 layers x 100 hidden x 3.2e7 (attention) = 6.0768e12
    # GPU: 6.0768e12 / (10 TFLOP/s x 0.5) = 1.21536 s + 10 steps x 10 ms = 1.31536 s; + 5 s on the host = 6.31536 s
    assert small["compute_seconds"] == 1.32 and small["wall_seconds"] == 6.3
    assert small["cost_usd"] == pytest.approx(0.0632)  # 6.31536 s x $36/h
    assert small["compute_speedup"] == 15.2  # 20 s here / 1.31536 s
    assert small["this_machine_tflops"] == pytest.approx(0.3038)  # 6.0768e12 / 20 s
    assert small["effective_tflops"] == 5.0 and big["cost_usd"] == 0.0
    assert small["fits_budget"] is False  # 6.3 s > 6 s
    assert small["memory_gb"] == 1.5 and small["fits_memory"] is False and big["fits_memory"] is True  # 0.5 + 1.0 reserved

    lora = MethodPlan(**{**plan.to_dict(), "method": "lora"})
    assert project(lora, shape, table, memory_gb=0.5)[0]["compute_seconds"] == pytest.approx((4e12 + 7.68e10) / 5e12 + 0.1, abs=0.01)


def test_gpu_memory_by_hand():
    shape = ModelShape(params=2_000_000, dense_params=1_000_000, layers=2, hidden=100, heads=2)
    # per token and layer: 100 x (34 + 5 x 2 x 50 / 100) = 3,900 bytes; training batch: 2 layers x 4 x 50 tokens
    full = gpu_memory_gb(shape, "full", batch_size=4, eval_batch_size=8, max_length=50, trainable=0)
    assert full == pytest.approx((2e6 * 6 + 2e6 * 12 + 2 * 4 * 50 * 3900) / 1e9)
    lora = gpu_memory_gb(shape, "lora", batch_size=4, eval_batch_size=8, max_length=50, trainable=40_000)
    assert lora == pytest.approx((2e6 * 6 + 40_000 * 12 + 2 * 4 * 50 * 3900) / 1e9)
    head = gpu_memory_gb(shape, "head", batch_size=4, eval_batch_size=8, max_length=50, trainable=0)
    assert head == pytest.approx((2e6 * 6 + 8 * 50 * 3900) / 1e9) and head < lora < full


def test_model_shape_reads_safetensors_headers(tiny_bert):
    shape = model_shape(str(tiny_bert))
    assert (shape.layers, shape.hidden, shape.heads) == (2, 32, 2)
    # dense: per layer q, k, v, o (32x32 + 32), ffn in/out (32x64 + 64, 64x32 + 32), 2 layer norms; pooler 32x32 + 32
    layer = 4 * (32 * 32 + 32) + (32 * 64 + 64) + (64 * 32 + 32) + 2 * 2 * 32
    assert shape.dense_params == 2 * layer + 32 * 32 + 32
    assert shape.params > shape.dense_params  # the embeddings


def test_cli_shows_the_gpu_projection(tiny_bert, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TUNEFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "none"))
    config = write_config(tmp_path, tiny_bert, epochs=1, batch_size=8)
    table = tmp_path / "two.yaml"
    table.write_text(TWO_GPUS, encoding="utf-8")
    code, stdout, stderr = run_cli(monkeypatch, capsys, "plan", config, "--methods", "tfidf,head,full", "--gpus", table)
    assert code == 0, stderr
    assert "projection, not measured" in stdout and "small" in stdout and "big" in stdout
    assert "full (needs" in stdout and "tfidf (needs" not in stdout  # tfidf trains on the CPU only
    assert "GPU table:" in stderr and "two.yaml" in stderr  # (rich wraps the long path)

    code, stdout, _ = run_cli(monkeypatch, capsys, "plan", config, "--methods", "tfidf,full", "--json", "--gpus", table)
    result = json.loads(stdout)
    assert code == 0 and result["gpu_projection"]["label"] == "projection, not measured"
    assert result["gpu_projection"]["assumptions"]["efficiency"] == 0.5
    tfidf, full = result["methods"]
    assert tfidf["gpus"] == [] and [g["gpu"] for g in full["gpus"]] == ["small", "big"]
    assert full["gpus"][0]["cost_usd"] == pytest.approx(full["gpus"][0]["wall_seconds"] / 3600 * 36, abs=1e-3)
    assert full["wall_seconds"] > 0 and full["compute"]["training_steps"]["batches"] > 0

    (tmp_path / "bad.yaml").write_text("gpus: []", encoding="utf-8")
    code, _, stderr = run_cli(monkeypatch, capsys, "plan", config, "--gpus", tmp_path / "bad.yaml")
    assert code == 2 and "bad.yaml" in stderr and "at least one GPU type" in stderr
