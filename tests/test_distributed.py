"""Training in several processes under torchrun (gloo on CPU): same result as one process, elastic restarts, two nodes.

The subprocess tests run `tuneforge train --nproc N`, which starts torchrun itself, on a tiny BERT without
dropout: dropout masks are drawn per process, so with dropout two processes see other masks than one and the
runs could not be compared step for step.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tuneforge.config import load_config
from tuneforge.engine.distributed import frames_digest, plan_batches
from tuneforge.engine.elastic import find_elastic_run
from tuneforge.engine.run import train
from tuneforge.errors import ConfigError
from tuneforge.launch import Launch, launcher_env, strip_launcher_flags, torchrun_command
from tuneforge.rundir import RunDir

from conftest import run_cli, save_tiny_bert, write_config

# 48 training rows / global batch 8 = 6 steps an epoch; checkpoints every 2 steps
SETTINGS = dict(method="full", epochs=2, batch_size=8, checkpoint_every=2, keep_checkpoints=10, early_stopping_patience=None)
STEPS = 12
# Tolerance for 2 processes vs 1: each rank's batch is half the global one, and gloo sums the two halves'
# gradients in another order than one process sums the whole batch, so the floats differ in the last bits
# (measured here: training losses agree to ~1e-6 relative). Allow 1e-3 relative for other CPUs and BLAS builds.
REL = 1e-3


# -- fast unit tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("batch", "accumulation", "processes", "expected"),
    [
        (16, 1, 1, (16, 1)),  # one process: the config's values exactly
        (16, 2, 1, (16, 2)),
        (16, 1, 2, (8, 1)),  # two processes: half the batch each
        (16, 1, 4, (4, 1)),
        (4, 4, 2, (4, 2)),  # 16 examples a step: 2 processes x 4 x 2 accumulation, no batch above the config's 4
        (6, 1, 3, (2, 1)),
    ],
)
def test_global_batch_is_kept_on_any_number_of_processes(batch, accumulation, processes, expected):
    plan = plan_batches(batch, accumulation, processes)
    assert (plan.per_device, plan.accumulation) == expected
    assert plan.global_batch == batch * accumulation
    assert plan.per_device <= batch


def test_a_batch_that_cannot_be_split_evenly_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"16 examples per step cannot be split evenly over 3 processes"):
        plan_batches(16, 1, 3)


def test_launcher_flags_are_removed_from_the_ranks_command_in_both_spellings():
    argv = ["-q", "train", "c.yaml", "--nproc", "2", "--max-restarts=1", "--set", "train.epochs=1", "--rdzv-id", "x"]
    assert strip_launcher_flags(argv) == ["-q", "train", "c.yaml", "--set", "train.epochs=1"]


def test_torchrun_command_for_one_node_and_for_several():
    one = torchrun_command(["train", "c.yaml", "--nproc", "2"], Launch(nproc=2, max_restarts=1), environ={})
    assert one[1:] == ["-m", "torch.distributed.run", "--nproc-per-node", "2", "--max-restarts", "1", "--standalone"] + [
        "-m",
        "tuneforge.cli",
        "train",
        "c.yaml",
    ]
    multi = Launch(nproc=4, nnodes="2", node_rank=1, rdzv_endpoint="10.0.0.1:29400")
    command = torchrun_command(["train", "c.yaml"], multi, environ={"SLURM_JOB_ID": "77"})
    joined = " ".join(command)
    assert "--nnodes 2 --node-rank 1 --rdzv-backend c10d --rdzv-endpoint 10.0.0.1:29400 --rdzv-id 77" in joined
    with pytest.raises(ConfigError, match="--rdzv-endpoint"):
        torchrun_command(["train", "c.yaml"], Launch(nproc=1, nnodes="2"), environ={})
    with pytest.raises(ConfigError, match="without --nproc under torchrun"):
        torchrun_command(["train", "c.yaml"], Launch(nproc=2), environ={"RANK": "0"})


def test_launcher_environment_splits_cores_and_keeps_the_users_settings():
    env = launcher_env(2, environ={})
    assert env["OMP_WAIT_POLICY"] == "PASSIVE"
    assert env["OMP_NUM_THREADS"] == str(max(1, (os.cpu_count() or 1) // 2))
    assert env["TORCH_DISABLE_SHARE_RDZV_TCP_STORE"] == "1"  # a fresh store per restart (pytorch/pytorch#135712)
    assert launcher_env(2, environ={"OMP_NUM_THREADS": "3"})["OMP_NUM_THREADS"] == "3"


def test_single_process_methods_are_refused_before_anything_starts(tmp_path, monkeypatch, capsys):
    config = write_config(tmp_path, None, method="tfidf")
    code, _, err = run_cli(monkeypatch, capsys, "train", config, "--nproc", "2")
    assert code == 2
    assert "train.method=tfidf trains in a single process" in err
    assert not (tmp_path / "runs").exists()


def test_launcher_flags_without_nproc_are_a_usage_error_not_ignored(tmp_path, monkeypatch, capsys):
    config = write_config(tmp_path, None, method="tfidf")
    code, _, err = run_cli(monkeypatch, capsys, "train", config, "--max-restarts", "2")
    assert code == 2
    assert "go with --nproc N" in err
    assert not (tmp_path / "runs").exists()


def test_split_fingerprint_changes_with_the_rows_and_their_order():
    import pandas as pd

    frame = pd.DataFrame({"text": ["a", "b", "c"], "label": ["x", "y", "x"]})
    same = frames_digest({"train": frame.copy()})
    assert frames_digest({"train": frame}) == same
    assert frames_digest({"train": frame.iloc[::-1]}) != same
    assert frames_digest({"validation": frame}) != same
    tags = pd.DataFrame({"text": ["a", "b"], "label": [["x", "y"], ["z"]]})  # multilabel cells are lists
    assert frames_digest({"train": tags}) != frames_digest({"train": tags.assign(label=[["x"], ["z"]])})


def test_a_restarted_group_finds_the_run_its_first_attempt_started(tmp_path):
    runs = tmp_path / "runs"
    ours, other = RunDir.create(runs, "ours"), RunDir.create(runs, "other")
    ours.update(started="2026-01-01T00:00:00", distributed={"world_size": 2, "elastic_key": "rdzv:abc"})
    other.update(started="2026-01-01T00:00:01", distributed={"world_size": 2, "elastic_key": "rdzv:def"})
    (runs / "broken").mkdir()
    (runs / "broken" / "run.json").write_text("{not json")
    assert find_elastic_run(runs, "rdzv:abc") == ours.path
    assert find_elastic_run(runs, "rdzv:zzz") is None
    assert find_elastic_run(runs, None) is None


# -- several processes (subprocesses under torchrun) -------------------------------------------------------

AGREEMENT_SCRIPT = """
import torch.distributed
from tuneforge.engine.distributed import check_same_on_every_rank, rank, sum_over_ranks
from tuneforge.errors import RunError

check_same_on_every_rank("same rows", what="the data split")  # agreeing ranks pass
print(f"rank {rank()} sum {sum_over_ranks([rank() + 1, 10])}")
try:
    check_same_on_every_rank(f"rows of rank {rank()}", what="the data split")
except RunError as exc:
    print(f"rank {rank()} refused: {exc}")
torch.distributed.destroy_process_group()
"""


def test_ranks_that_disagree_on_the_data_split_all_stop_with_a_clear_error(tmp_path):
    script = tmp_path / "agree.py"
    script.write_text(AGREEMENT_SCRIPT, encoding="utf-8")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(script)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=_env())
    assert done.returncode == 0, done.stderr[-3000:]
    for r in (0, 1):
        assert f"rank {r} sum [3, 20]" in done.stdout
        assert f"rank {r} refused: the data split differs between processes (rank 0 vs rank(s) [1])" in done.stdout


@pytest.fixture(scope="module")
def bert_without_dropout(tmp_path_factory) -> Path:
    """The tiny BERT with dropout off: each process would draw its own dropout masks."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert-no-dropout"), hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(**extra) -> dict:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **extra}
    src = str(Path(__file__).resolve().parents[1] / "src")  # this checkout's code in every rank
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    return env


def _tuneforge(*args, env=None, timeout=300) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "tuneforge.cli", "-q", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env or _env())


def _only_run(runs_dir: Path) -> RunDir:
    folders = [p for p in runs_dir.iterdir() if p.is_dir()]
    assert len(folders) == 1, f"expected one run folder, found {folders}"
    return RunDir(folders[0])


@pytest.fixture(scope="module")
def one_process(bert_without_dropout, tmp_path_factory):
    config = write_config(tmp_path_factory.mktemp("one"), bert_without_dropout, **SETTINGS)
    return train(load_config(config))


@pytest.fixture(scope="module")
def two_processes(bert_without_dropout, tmp_path_factory):
    folder = tmp_path_factory.mktemp("two")
    config = write_config(folder, bert_without_dropout, **SETTINGS)
    done = _tuneforge("train", config, "--nproc", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    run = _only_run(folder / "runs")
    assert done.stdout.strip().splitlines()[-1] == str(run.path)  # rank 0 prints; rank 1 prints nothing
    return run


def test_two_processes_train_like_one_process_with_the_same_global_batch(one_process, two_processes):
    info = two_processes.info()
    assert info["status"] == "complete"
    assert info["train"]["distributed"] == {
        "world_size": 2,
        "nodes": 1,
        "backend": "gloo",
        "per_device_batch": 4,
        "gradient_accumulation_steps": 1,
        "global_batch": 8,
    }
    assert json.loads(two_processes.cost_file.read_text())["distributed"]["global_batch"] == 8
    assert info["train"]["global_step"] == one_process.train_info["global_step"] == STEPS
    assert info["train"]["train_loss"] == pytest.approx(one_process.train_info["train_loss"], rel=REL)
    metrics = json.loads((two_processes.eval_dir / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(one_process.metrics["accuracy"], abs=1e-9)
    assert metrics["log_loss"] == pytest.approx(one_process.metrics["log_loss"], rel=REL)
    # the same rows, split once by rank 0 and identically on rank 1
    assert RunDir(one_process.run_dir).splits()["train"]["text"].tolist() == two_processes.splits()["train"]["text"].tolist()
    # rank 0 writes the run; rank 1 only its log
    assert sorted(p.name for p in two_processes.logs_dir.iterdir()) == ["rank1.log"]
    assert len(list(two_processes.path.glob("model_card.md"))) == 1


def test_a_killed_rank_restarts_the_group_which_resumes_the_same_run(bert_without_dropout, two_processes, tmp_path):
    config = write_config(tmp_path, bert_without_dropout, **SETTINGS)
    env = _env(TUNEFORGE_TEST_KILL_RANK_AT_STEP="1:5")  # rank 1 dies after step 5; the last checkpoint is step 4
    done = _tuneforge("train", config, "--nproc", "2", "--max-restarts", "1", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    run = _only_run(tmp_path / "runs")
    info = run.info()
    assert "rank 1 kills itself after step 5" in (run.logs_dir / "rank1.log").read_text()
    assert info["status"] == "complete"
    assert info["distributed"]["restarts"] == 1
    assert info["resumed_from"].endswith("checkpoint-4")
    assert info["train"]["global_step"] == two_processes.info()["train"]["global_step"] == STEPS
    metrics = json.loads((run.eval_dir / "metrics.json").read_text())
    uninterrupted = json.loads((two_processes.eval_dir / "metrics.json").read_text())
    # resuming restores model, optimiser, scheduler, data order and every rank's RNG state
    assert metrics["accuracy"] == pytest.approx(uninterrupted["accuracy"], abs=1e-9)
    assert metrics["log_loss"] == pytest.approx(uninterrupted["log_loss"], rel=REL)


def test_a_failing_group_without_restarts_is_reported_and_the_run_marked_failed(bert_without_dropout, tmp_path):
    config = write_config(tmp_path, bert_without_dropout, **SETTINGS)
    env = _env(TUNEFORGE_TEST_KILL_RANK_AT_STEP="1:3")
    done = _tuneforge("train", config, "--nproc", "2", "--rdzv-endpoint", f"127.0.0.1:{_free_port()}", env=env)  # a chosen port
    assert done.returncode == 1
    assert "torchrun ended with exit code" in done.stderr
    assert _only_run(tmp_path / "runs").info()["status"] == "failed"


@pytest.mark.slow  # ~25 s on 2 shared cores: two torchrun agents meeting at a c10d rendezvous
def test_two_nodes_on_one_machine_train_one_run(bert_without_dropout, two_processes, tmp_path):
    """Two `tuneforge train --nnodes 2` commands meet at a c10d rendezvous on 127.0.0.1, one process each."""
    config = write_config(tmp_path, bert_without_dropout, **SETTINGS)
    endpoint = f"127.0.0.1:{_free_port()}"
    nodes = [
        subprocess.Popen(
            [sys.executable, "-m", "tuneforge.cli", "-q", "train", str(config), "--nproc", "1", "--nnodes", "2"]
            + ["--node-rank", str(node), "--rdzv-endpoint", endpoint, "--rdzv-id", "two-nodes-test"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for node in (0, 1)
    ]
    outputs = [node.communicate(timeout=300) for node in nodes]
    for node, (_, err) in zip(nodes, outputs):
        assert node.returncode == 0, err[-3000:]
    run = _only_run(tmp_path / "runs")
    info = run.info()
    assert info["status"] == "complete"
    assert info["train"]["distributed"]["nodes"] == 2
    assert info["train"]["distributed"]["world_size"] == 2
    assert info["train"]["global_step"] == STEPS
    metrics = json.loads((run.eval_dir / "metrics.json").read_text())
    assert metrics["log_loss"] == pytest.approx(json.loads((two_processes.eval_dir / "metrics.json").read_text())["log_loss"], rel=REL)
