"""Kill matrix: `kill -9` and other faults against the training-side commands, and what survives them.

    python benchmarks/kill_matrix.py [--kills 3] [--seed 0] [--only train,compress,tune,predict,faults]
                                     [--out benchmarks/results/kill_matrix.json] [--keep]

Everything runs on a tiny random BERT (built here, as tests/conftest.py does) and
the tiny review data in tests/data, in a temporary folder; nothing touches the
network. Each command (`train`, `compress`, `tune`, `predict --input`) runs once
uninterrupted as the reference, then K times (`--kills`) as a subprocess that
gets SIGKILL at a seeded random moment within the part of the run that writes
files: from its first file (train: run.json; compress: compress/; tune: the
first trial; predict: the output's temporary) to the reference's end (compress:
to its last variant folder; tune: to its last finished trial, and a kill that
falls between two trials waits for the next one to be RUNNING). After each kill
the script checks what is on disk and reruns (or resumes) the command. Two
non-kill faults follow: a disk that fills up during training (a small tmpfs
when this process may mount one, else an RLIMIT_FSIZE limit that makes writes
fail with EFBIG), and data files that cannot be read.

Prints one table (fault | kills | what survives | outcome) and writes the details
as JSON. Exit code 1 when a "must never happen" check fails: a `model/` or
`compress/<variant>/` folder that does not load, or a partial `predict --output`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # this process only loads models to check them
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(ROOT / "src"))
DATA = ROOT / "tests" / "data"
TUNE_CONFIG = ROOT / "examples" / "reviews-tfidf-tune.yaml"
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TRAIN_SETTINGS = {
    "method": "full",
    "epochs": 6,
    "batch_size": 8,
    "max_length": 32,
    "learning_rate": 5e-3,
    "seed": 1,
    "checkpoint_every": 2,
    "early_stopping_patience": None,  # the step count must not depend on validation noise
    "keep": "fine-tuned",  # stays a transformer, so compress accepts it
}
COMPRESS_VARIANTS = 5  # onnx, int8, distill, distill-onnx, distill-int8
COMPRESS_ARGS = ["--methods", "onnx,int8,distill", "--set", "compress.epochs=1", "--set", "compress.latency_texts=3"]
TUNE_TRIALS = 6
PREDICT_REPEATS = 2000  # 15 test rows x 2000 = 30,000 rows: a few seconds of scoring
TIMEOUT = 180


# -- the tiny model and its config (the tests/conftest.py recipe) ---------------------------------


def vocabulary() -> list[str]:
    """Every word of the review data, so the word-level tokenizer never needs [UNK]."""
    words = set()
    for path in DATA.glob("reviews_*"):
        words.update(re.findall(r"[a-z]+", path.read_text(encoding="utf-8").lower()))
    return SPECIALS + sorted(words) + list("abcdefghijklmnopqrstuvwxyz0123456789.,!?&;<>/")


def build_tiny_bert(folder: Path) -> Path:
    """A 2-layer, 32-wide BERT saved like a hub model: fine-tunes in about a second on one core."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    words = vocabulary()
    (folder / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab=str(folder / "vocab.txt"), do_lower_case=True)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(words),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def write_train_config(folder: Path, model: Path) -> Path:
    import yaml

    config = {
        "data": {"train": str(DATA / "reviews_train.csv"), "text_column": "review", "label_column": "sentiment"},
        "model": {"name": str(model)},
        "train": TRAIN_SETTINGS,
        "output": {"dir": str(folder / "runs")},
    }
    path = folder / "train.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def write_big_input(path: Path, repeats: int) -> int:
    """The test reviews repeated, so `predict --input` runs long enough to be killed mid-file."""
    lines = (DATA / "reviews_test.csv").read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], [line for line in lines[1:] if line.strip()]
    path.write_text("\n".join([header, *rows * repeats]) + "\n", encoding="utf-8")
    return len(rows) * repeats


# -- processes ------------------------------------------------------------------------------------


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "tuneforge.cli", "-q", *map(str, args)]


def child_env() -> dict[str, str]:
    """This checkout's tuneforge, offline, single-threaded: the machine is shared."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    for key, value in {
        "HF_HUB_OFFLINE": "1",
        "OMP_WAIT_POLICY": "PASSIVE",
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }.items():
        env.setdefault(key, value)
    return env


def run(args: list[str], preexec_fn=None) -> subprocess.CompletedProcess:
    """Run to the end; the caller reads the exit code and the last error line."""
    return subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT, env=child_env(), preexec_fn=preexec_fn)


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def launch(
    args: list[str],
    ready: Callable[[], bool],
    kill_after: float | None,
    written: Callable[[], bool] | None = None,
    kill_when: Callable[[], bool] | None = None,
) -> dict:
    """Start a command; once `ready()` (its first file exists), wait `kill_after` s and SIGKILL it
    (then, or at the first later moment `kill_when()` holds).

    With `kill_after=None` it runs to the end: that is the reference, which also says
    when the first file appeared, when `written()` (its last folder exists) and how long it took.
    """
    started = time.monotonic()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=child_env())
    ready_at = written_at = None
    while proc.poll() is None and time.monotonic() - started < TIMEOUT:
        now = time.monotonic()
        if ready_at is None and ready():
            ready_at = now
        if written is not None and written_at is None and written():
            written_at = now
        due = kill_after is not None and ready_at is not None and now - ready_at >= kill_after
        if due and (kill_when is None or kill_when()):
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    else:
        if proc.poll() is None:  # timed out: stop it, and say so
            os.kill(proc.pid, signal.SIGKILL)
    stderr = proc.communicate(timeout=30)[1]
    ended = time.monotonic()
    return {
        "killed": proc.returncode == -signal.SIGKILL,
        "returncode": proc.returncode,
        "ready_s": round(ready_at - started, 2) if ready_at is not None else None,
        "seconds": round(ended - started, 2),
        "written_s": round(written_at - started, 2) if written_at is not None else None,
        "killed_after_ready_s": round(ended - ready_at, 2) if ready_at is not None and kill_after is not None else None,
        "error": last_line(stderr) if proc.returncode not in (0, -signal.SIGKILL) else "",
    }


def kill_delays(fault: str, seed: int, kills: int, reference: dict) -> list[float]:
    """Seeded moments from the first file to the reference's last folder, or its end (per fault, so --only keeps them)."""
    rng = random.Random(f"{seed}-{fault}")
    window = max(0.3, (reference["written_s"] or reference["seconds"]) - (reference["ready_s"] or 0.0))
    return [round(rng.uniform(0.0, window), 2) for _ in range(kills)]


# -- what is on disk ------------------------------------------------------------------------------


def load_problem(path: Path, variant: str | None = None) -> str | None:
    """None when the model loads and scores a text; otherwise why not (the thing that must never happen)."""
    from tuneforge.predict.predictor import Predictor

    try:
        Predictor.load(path, variant=variant).predict(["great phone, fast delivery"])
    except Exception as exc:  # noqa: BLE001 - any failure to load or score is the finding
        return f"{type(exc).__name__}: {exc}"[:300]
    return None


def only_run(parent: Path) -> Path | None:
    found = sorted(p.parent for p in parent.glob("*/run.json"))
    return found[0] if found else None


def run_json(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        return {"status": f"unreadable ({type(exc).__name__})"}


def temporaries(folder: Path, pattern: str = ".*.tmp") -> list[str]:
    return sorted(p.name for p in folder.glob(pattern)) if folder.is_dir() else []


def complete_checkpoints(run_dir: Path) -> list[int]:
    from tuneforge.engine.checkpoints import checkpoints, verify_checkpoint

    return [step for step, path in checkpoints(run_dir / "checkpoints") if verify_checkpoint(path) is None]


def run_state(run_dir: Path) -> dict:
    """What a stopped training left: run.json's status, the intact checkpoints, the model folder."""
    return {"status": run_json(run_dir).get("status"), "checkpoints": complete_checkpoints(run_dir), **model_state(run_dir)}


def model_state(run_dir: Path) -> dict:
    """Is there a model/ folder, and does it load; plus leftover temporaries of model/."""
    present = (run_dir / "model").exists()
    return {
        "model_present": present,
        "model_problem": load_problem(run_dir / "model") if present else None,
        "model_temporaries": temporaries(run_dir, ".model.*"),
    }


# -- the faults -----------------------------------------------------------------------------------


def fault_train(work: Path, config: Path, kills: int, seed: int) -> tuple[dict, Path]:
    """Kill `tuneforge train`, then `train --resume`; returns the row and the finished reference run."""
    reference = launch(cli("train", config), lambda: only_run(work / "runs") is not None, None)
    ref_run = only_run(work / "runs")
    if reference["returncode"] != 0 or ref_run is None:
        raise SystemExit(f"reference training failed: {reference['error']}")
    ref_step = run_json(ref_run)["train"]["global_step"]
    details = []
    for i, delay in enumerate(kill_delays("train", seed, kills, reference)):
        out = work / f"train-kill-{i}"
        killed = launch(cli("train", config, "--set", f"output.dir={out}"), lambda out=out: only_run(out) is not None, delay)
        run_dir = only_run(out)
        after = run_state(run_dir)
        resumed = run(cli("train", "--resume", run_dir))
        final = run_json(run_dir)
        details.append(
            {
                "kill_after_s": delay,
                **killed,
                "after_kill": after,
                "resume_returncode": resumed.returncode,
                "resume_error": last_line(resumed.stderr) if resumed.returncode else "",
                "resumed_from": final.get("resumed_from"),
                "global_step": final.get("train", {}).get("global_step"),
                "final_model_problem": load_problem(run_dir / "model"),
                "model_temporaries_after_resume": temporaries(run_dir, ".model.*"),
            }
        )
    never = [d["after_kill"]["model_problem"] for d in details if d["after_kill"]["model_problem"]]
    misses = [
        f"kill {i + 1}: resume exit {d['resume_returncode']} {d['resume_error']}, step {d['global_step']}, model {d['final_model_problem']}"
        for i, d in enumerate(details)
        if d["resume_returncode"] != 0 or d["global_step"] != ref_step or d["final_model_problem"]
    ]
    statuses = sorted({d["after_kill"]["status"] for d in details})
    steps = [max(d["after_kill"]["checkpoints"], default=0) for d in details]
    with_model = sum(d["after_kill"]["model_present"] for d in details)
    survives = (
        f"run.json status {'/'.join(map(str, statuses))}; newest complete checkpoint at step {'/'.join(map(str, steps))} "
        f"of {ref_step}; model/ present in {with_model} of {len(details)}, and every model/ present loads"
        if not never
        else f"model/ present but not loading: {never[0]}"
    )
    left = "/".join(str(len(d["after_kill"]["model_temporaries"])) for d in details)
    still = "/".join(str(len(d["model_temporaries_after_resume"])) for d in details)
    outcome = (
        f"`train --resume` finished {sum(d['resume_returncode'] == 0 for d in details)}/{len(details)}, "
        f"global_step {'/'.join(str(d['global_step']) for d in details)} = uninterrupted {ref_step}; "
        f"hidden `.model.*.tmp` folders left by the kill {left}, still there after the resume {still}"
    )
    row = make_row("train (full, tiny BERT, 6 epochs, checkpoint every 2 steps)", details, survives, outcome, never, misses)
    row["reference"] = {**reference, "global_step": ref_step}
    return row, ref_run


def copy_run(source: Path, target: Path) -> Path:
    """A fresh finished run per kill, so each compress starts from the same state."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("compress"))
    return target


def variant_state(run_dir: Path) -> dict:
    """Every variant folder compress left (as `RunDir.variants()` lists them, plus plain folders) and whether it loads."""
    from tuneforge.rundir import RunDir

    folder = run_dir / "compress"
    listed = RunDir(run_dir).variants()
    plain = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) if folder.is_dir() else []
    names = sorted(set(listed) | set(plain))
    return {
        "variants": names,
        "listed": listed,
        "problems": {name: problem for name in names if (problem := load_problem(run_dir, variant=name))},
        "temporaries": temporaries(folder),
    }


def fault_compress(work: Path, ref_run: Path, kills: int, seed: int) -> dict:
    """Kill `tuneforge compress`, check every variant folder loads, then rerun compress."""
    ref_copy = copy_run(ref_run, work / "compress-ref" / ref_run.name)
    # The kill window is the part that writes variant folders; measuring them afterwards writes nothing.
    built = lambda: len(list((ref_copy / "compress").glob("[!.]*/tuneforge.json"))) >= COMPRESS_VARIANTS  # noqa: E731
    reference = launch(cli("compress", ref_copy, *COMPRESS_ARGS), lambda: (ref_copy / "compress").exists(), None, built)
    if reference["returncode"] != 0:
        raise SystemExit(f"reference compress failed: {reference['error']}")
    expected_variants = variant_state(ref_copy)["variants"]
    details = []
    for i, delay in enumerate(kill_delays("compress", seed, kills, reference)):
        run_dir = copy_run(ref_run, work / f"compress-kill-{i}" / ref_run.name)
        killed = launch(cli("compress", run_dir, *COMPRESS_ARGS), lambda run_dir=run_dir: (run_dir / "compress").exists(), delay)
        after = variant_state(run_dir)
        rerun = run(cli("compress", run_dir, *COMPRESS_ARGS))
        final = variant_state(run_dir)
        details.append(
            {
                "kill_after_s": delay,
                **killed,
                "after_kill": after,
                "rerun_returncode": rerun.returncode,
                "rerun_error": last_line(rerun.stderr) if rerun.returncode else "",
                "tradeoffs_written": (run_dir / "compress" / "tradeoffs.json").is_file(),
                "after_rerun": final,
            }
        )
    never = [f"{name}: {p}" for d in details for name, p in d["after_kill"]["problems"].items()]
    misses = [
        f"kill {i + 1}: rerun exit {d['rerun_returncode']} {d['rerun_error']}, variants {d['after_rerun']['variants']}"
        for i, d in enumerate(details)
        if d["rerun_returncode"] != 0
        or not d["tradeoffs_written"]
        or d["after_rerun"]["variants"] != expected_variants
        or d["after_rerun"]["problems"]
    ]
    found = "/".join(str(len(d["after_kill"]["variants"])) for d in details)
    left = "/".join(str(len(d["after_kill"]["temporaries"])) for d in details)
    still = "/".join(str(len(d["after_rerun"]["temporaries"])) for d in details)
    hidden_listed = sorted({n for d in details for n in d["after_kill"]["listed"] if n.startswith(".")})
    survives = (
        f"{found} of {len(expected_variants)} variant folders, every one loads; {left} hidden temporaries left"
        + (f"; temporaries listed as variants: {', '.join(hidden_listed)}" if hidden_listed else "")
        if not never
        else f"variant folder that does not load: {never[0]}"
    )
    outcome = (
        f"rerun finished {sum(d['rerun_returncode'] == 0 for d in details)}/{len(details)} with all "
        f"{len(expected_variants)} variants loading; temporaries still there after the rerun: {still}"
    )
    row = make_row("compress (onnx, int8, distill)", details, survives, outcome, never, misses)
    row["reference"] = {**reference, "variants": expected_variants}
    return row


def trial_states(study_dir: Path) -> dict[int, str]:
    """Trial number -> Optuna state, read straight from the study's SQLite file."""
    db = study_dir / "study.db"
    if not db.is_file():
        return {}
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        try:
            return dict(conn.execute("SELECT number, state FROM trials ORDER BY number").fetchall())
        except sqlite3.OperationalError:  # killed before Optuna created its tables
            return {}


def study_of(output: Path) -> Path | None:
    found = sorted(output.glob("study-*/study.db"))
    return found[0].parent if found else None


def fault_tune(work: Path, kills: int, seed: int) -> dict:
    """Kill `tuneforge tune`, then rerun it: the study must continue and fail the dead worker's trials."""

    def command(out: Path) -> list[str]:
        return cli("tune", TUNE_CONFIG, "--trials", TUNE_TRIALS, "--set", f"output.dir={out}")

    def trials_started(out: Path) -> Callable[[], bool]:
        return lambda: bool(trial_states(out / study_name))

    def trial_running(out: Path) -> Callable[[], bool]:
        return lambda: "RUNNING" in trial_states(out / study_name).values()

    study_name = "study-tfidf-reviews_train"  # the default: tfidf method, data file name

    def all_finished() -> bool:
        return sum(s in ("COMPLETE", "PRUNED") for s in trial_states(work / "tune-ref" / study_name).values()) >= TUNE_TRIALS

    reference = launch(command(work / "tune-ref"), trials_started(work / "tune-ref"), None, all_finished)
    if reference["returncode"] != 0:
        raise SystemExit(f"reference tune failed: {reference['error']}")
    details = []
    for i, delay in enumerate(kill_delays("tune", seed, kills, reference)):
        out = work / f"tune-kill-{i}"
        # A tfidf trial is RUNNING for ~0.2 s of each ~0.5 s: a kill that falls between trials waits
        # for the next one, so every kill tests that the dead worker's trial is marked FAIL.
        killed = launch(command(out), trials_started(out), delay, kill_when=trial_running(out))
        study = study_of(out)
        before = trial_states(study) if study else {}
        running = [n for n, state in before.items() if state == "RUNNING"]
        rerun = run(command(out))
        after = trial_states(study_of(out)) if study_of(out) else {}
        details.append(
            {
                "kill_after_s": delay,
                **killed,
                "finished_at_kill": sum(s in ("COMPLETE", "PRUNED") for s in before.values()),
                "running_at_kill": running,
                "rerun_returncode": rerun.returncode,
                "rerun_error": last_line(rerun.stderr) if rerun.returncode else "",
                "finished_after_rerun": sum(s in ("COMPLETE", "PRUNED") for s in after.values()),
                "killed_trials_after_rerun": {n: after.get(n) for n in running},
                "states_after_rerun": after,
            }
        )
    misses = [
        f"kill {i + 1}: rerun exit {d['rerun_returncode']} {d['rerun_error']}, {d['finished_after_rerun']} finished, "
        f"killed trials now {d['killed_trials_after_rerun']}"
        for i, d in enumerate(details)
        if d["rerun_returncode"] != 0
        or d["finished_after_rerun"] != TUNE_TRIALS
        or any(state != "FAIL" for state in d["killed_trials_after_rerun"].values())
    ]
    running = sum(len(d["running_at_kill"]) for d in details)
    survives = (
        f"study.db with {'/'.join(str(d['finished_at_kill']) for d in details)} finished trials; "
        f"{'/'.join(str(len(d['running_at_kill'])) for d in details)} trial(s) left RUNNING"
    )
    failed = sum(state == "FAIL" for d in details for state in d["killed_trials_after_rerun"].values())
    outcome = (
        f"rerun finished {sum(d['rerun_returncode'] == 0 for d in details)}/{len(details)}, "
        f"{'/'.join(str(d['finished_after_rerun']) for d in details)} of {TUNE_TRIALS} trials finished; "
        f"killed RUNNING trials marked FAIL: {failed} of {running}"
    )
    row = make_row(f"tune (tfidf, {TUNE_TRIALS} trials)", details, survives, outcome, [], misses)
    row["reference"] = reference
    return row


def output_state(path: Path, rows: int, reference: bytes | None) -> dict:
    """Absent, or complete (every row, same bytes as the uninterrupted output): never partial."""
    if not path.exists():
        return {"present": False, "complete": None}
    data = path.read_bytes()
    lines = data.count(b"\n") - 1  # minus the header
    return {"present": True, "rows": lines, "complete": lines == rows and data.endswith(b"\n"), "same_as_reference": data == reference}


def fault_predict(work: Path, run_dir: Path, kills: int, seed: int) -> dict:
    """Kill `tuneforge predict --input --output`; the output is absent or complete, never partial."""
    big = work / "big.csv"
    rows = write_big_input(big, PREDICT_REPEATS)

    def command(out: Path) -> list[str]:
        return cli("predict", run_dir, "--input", big, "--output", out, "--text-column", "review")

    def started(out: Path) -> Callable[[], bool]:
        return lambda: bool(temporaries(out.parent, f".{out.name}.*.tmp")) or out.exists()

    ref_out = work / "predict-ref" / "out.csv"
    ref_out.parent.mkdir()
    reference = launch(command(ref_out), started(ref_out), None)
    if reference["returncode"] != 0:
        raise SystemExit(f"reference predict failed: {reference['error']}")
    ref_bytes = ref_out.read_bytes()
    details = []
    for i, delay in enumerate(kill_delays("predict", seed, kills, reference)):
        out = work / f"predict-kill-{i}" / "out.csv"
        out.parent.mkdir()
        killed = launch(command(out), started(out), delay)
        after = {**output_state(out, rows, ref_bytes), "temporaries": temporaries(out.parent, f".{out.name}.*.tmp")}
        rerun = run(command(out))
        details.append(
            {
                "kill_after_s": delay,
                **killed,
                "after_kill": after,
                "rerun_returncode": rerun.returncode,
                "rerun_error": last_line(rerun.stderr) if rerun.returncode else "",
                "after_rerun": {**output_state(out, rows, ref_bytes), "temporaries": temporaries(out.parent, f".{out.name}.*.tmp")},
            }
        )
    never = [f"partial output: {d['after_kill']['rows']} of {rows} rows" for d in details if d["after_kill"]["complete"] is False]
    misses = [
        f"kill {i + 1}: rerun exit {d['rerun_returncode']} {d['rerun_error']}, output {d['after_rerun']}"
        for i, d in enumerate(details)
        if d["rerun_returncode"] != 0
        or not d["after_rerun"]["complete"]
        or not d["after_rerun"]["same_as_reference"]
        or d["after_rerun"]["temporaries"]
    ]
    absent = sum(not d["after_kill"]["present"] for d in details)
    stale = sum(bool(d["after_kill"]["temporaries"]) for d in details)
    survives = (
        f"OUT.csv absent {absent}, complete {len(details) - absent} of {len(details)}; stale temporary left {stale} times"
        if not never
        else never[0]
    )
    removed = sum(bool(d["after_kill"]["temporaries"]) and not d["after_rerun"]["temporaries"] for d in details)
    outcome = (
        f"rerun removed the stale temporary {removed}/{stale} and wrote all {rows:,} rows "
        f"{sum(bool(d['after_rerun']['complete']) for d in details)}/{len(details)} (same bytes as uninterrupted)"
    )
    row = make_row(f"predict --input ({rows:,} rows)", details, survives, outcome, never, misses)
    row["reference"] = reference
    return row


# -- non-kill faults ------------------------------------------------------------------------------


@contextlib.contextmanager
def small_tmpfs(folder: Path, size: int):
    """A `size`-byte tmpfs at `folder` (root only); yields False when mounting is not allowed here."""
    folder.mkdir(parents=True, exist_ok=True)
    command = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)]
    mounted = os.geteuid() == 0 and subprocess.run(command, capture_output=True, check=False).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], capture_output=True, check=False)


def file_size_limit(limit: int) -> Callable[[], None]:
    """preexec_fn: writes past `limit` bytes fail with EFBIG instead of SIGXFSZ killing the process."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def fault_disk_full(work: Path, config: Path, ref_run: Path, ref_step: int) -> dict:
    """Training whose disk fills up: a clear error, intact earlier checkpoints, and a resume once there is room."""
    checkpoint = max((p for p in (ref_run / "checkpoints").iterdir() if p.is_dir()), key=lambda p: p.name)
    base = tree_bytes(ref_run / "splits") + 64 * 1024
    size = base + int(2.5 * tree_bytes(checkpoint))  # fills while writing the third checkpoint
    mount = work / "tmpfs"
    with small_tmpfs(mount, size) as mounted:
        if mounted:
            out, how, preexec = mount, f"tmpfs of {size // 1024} KiB", None
        else:  # one file past the limit fails: the optimizer state of the first checkpoint
            limit = tree_bytes(checkpoint) // 2
            out, how, preexec = work / "fsize", f"RLIMIT_FSIZE of {limit // 1024} KiB per file, EFBIG", file_size_limit(limit)
        failed = run(cli("train", config, "--set", f"output.dir={out}"), preexec_fn=preexec)
        run_dir = only_run(out)
        after = run_state(run_dir) if run_dir else {}
        if mounted:
            subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], capture_output=True, check=False)
        resumed = run(cli("train", "--resume", run_dir)) if run_dir else None
        final_step = run_json(run_dir).get("train", {}).get("global_step") if run_dir else None
    message = last_line(failed.stderr)
    detail = {
        "simulated_with": how,
        "returncode": failed.returncode,
        "message": message,
        "names_run_dir": bool(run_dir) and str(run_dir) in message,
        "names_resume_command": "train --resume" in message,
        "after_fault": after,
        "resume_returncode": resumed.returncode if resumed else None,
        "global_step": final_step,
    }
    never = [after["model_problem"]] if after.get("model_problem") else []
    misses = []
    if not (failed.returncode == 1 and detail["names_run_dir"] and detail["names_resume_command"]):
        misses.append(f"not the documented `cannot write under RUN_DIR ... train --resume RUN_DIR` error (exit {failed.returncode})")
    if detail["resume_returncode"] != 0 or final_step != ref_step:
        misses.append(f"resume exit {detail['resume_returncode']}, global_step {final_step}")
    clear = detail["names_run_dir"] and detail["names_resume_command"]
    survives = (
        f"exit {failed.returncode}, {'message names the run folder and `train --resume`' if clear else f'message `{message[:110]}`'}; "
        f"run.json status {after.get('status')}; complete checkpoints at steps {after.get('checkpoints')}"
    )
    outcome = f"after making room, `train --resume` exit {detail['resume_returncode']}, global_step {final_step} = uninterrupted {ref_step}"
    return make_row(f"disk full while training ({how})", [detail], survives, outcome, never, misses)


def fault_unreadable(work: Path, config: Path) -> list[dict]:
    """Data files that cannot be read: exit 2 and a message that names the file."""
    folder = work / "folder.csv"
    folder.mkdir()
    garbage = work / "garbage.csv"
    garbage.write_bytes(b"review,sentiment\n" + random.Random(0).randbytes(4000) + b"\n")
    rows = []
    for label, path in (("a folder where the data file should be", folder), ("a data file of random bytes", garbage)):
        done = run(cli("train", config, "--set", f"data.train={path}", "--set", f"output.dir={work / 'unreadable-runs'}"))
        message = last_line(done.stderr)
        detail = {"path": str(path), "returncode": done.returncode, "message": message, "names_file": str(path) in message}
        survives = f"exit {done.returncode}; message {'names' if detail['names_file'] else 'does not name'} the file: `{message[:110]}`"
        created = [p.name for p in (work / "unreadable-runs").glob("*")] if (work / "unreadable-runs").exists() else []
        detail["run_folders_created"] = created
        outcome = f"{len(created)} run folders created" if created else "no run folder created"
        misses = [] if done.returncode == 2 and detail["names_file"] else [f"exit {done.returncode}, message {message[:120]}"]
        row = make_row(f"train on {label}", [detail], survives, outcome, [], misses)
        rows.append(row)
    return rows


# -- report ---------------------------------------------------------------------------------------


def make_row(fault: str, details: list[dict], survives: str, outcome: str, never: list[str], misses: list[str]) -> dict:
    """One table row; `never` are must-never-happen failures, `misses` other departures from the documented behaviour."""
    moments = [d["killed_after_ready_s"] for d in details if d.get("killed")]
    tried = [d for d in details if "killed" in d]
    unkilled = len(tried) - len(moments)
    when = f", {min(moments)}-{max(moments)} s after the first file" if moments else ""
    return {
        "fault": fault,
        "kills": f"{len(moments)}{when}" + (f" (+{unkilled} finished first)" if unkilled else "") if tried else "-",
        "survives": survives,
        "outcome": outcome + (f"; **not as documented**: {'; '.join(misses)}" if misses else ""),
        "must_never_failures": never,
        "not_as_documented": misses,
        "details": details,
    }


def table(rows: list[dict]) -> str:
    lines = ["| fault | kills | what survives | outcome |", "|---|---|---|---|"]
    lines += [f"| {r['fault']} | {r['kills']} | {r['survives']} | {r['outcome']} |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=3, help="SIGKILLs per command (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--only", default="train,compress,tune,predict,faults", help="comma-separated subset")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "kill_matrix.json")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    args = parser.parse_args()
    chosen = set(args.only.split(","))
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="kill-matrix-"))
    try:
        rows = collect(work, chosen, args.kills, args.seed)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    seconds = round(time.monotonic() - started, 1)
    print(table(rows))
    failures = [f for r in rows for f in r["must_never_failures"]]
    print(f"\n{seconds} s; must-never failures: {len(failures)}; rows not as documented: {sum(bool(r['not_as_documented']) for r in rows)}")
    report = {"kills": args.kills, "seed": args.seed, "cpus": os.cpu_count(), "seconds": seconds, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    return 1 if failures else 0


def collect(work: Path, chosen: set[str], kills: int, seed: int) -> list[dict]:
    """Train first: its finished reference run is what compress, predict and the disk-full resume compare with."""
    print("building the tiny BERT ...", file=sys.stderr, flush=True)
    config = write_train_config(work, build_tiny_bert(work / "tiny-bert"))
    print("train ...", file=sys.stderr, flush=True)
    train_row, ref_run = fault_train(work, config, kills if "train" in chosen else 0, seed)
    rows = [train_row] if "train" in chosen else []
    steps = {
        "compress": lambda: [fault_compress(work, ref_run, kills, seed)],
        "tune": lambda: [fault_tune(work, kills, seed)],
        "predict": lambda: [fault_predict(work, ref_run, kills, seed)],
        "faults": lambda: [fault_disk_full(work, config, ref_run, train_row["reference"]["global_step"]), *fault_unreadable(work, config)],
    }
    for name, step in steps.items():
        if name in chosen:
            print(f"{name} ...", file=sys.stderr, flush=True)
            rows += step()
    return rows


if __name__ == "__main__":
    sys.exit(main())
