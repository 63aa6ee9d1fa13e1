"""The `tuneforge` command: thin commands that parse, call one library function, print.

Exit codes: 0 success, 2 usage / config / data error (message on stderr), 1 otherwise.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from tuneforge.cli_common import SetOption, UsageProblem, _exit_on_sigterm, _print_metrics, _print_result, app, err, out, tradeoff_table  # noqa: F401
from tuneforge.errors import TuneforgeError


@app.callback()
def _setup(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Warnings only.")] = False,
) -> None:
    import os

    from rich.logging import RichHandler

    # transformers' load reports (e.g. "classifier weights newly initialised") are expected when fine-tuning.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "debug" if verbose else "error")

    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[RichHandler(console=err, show_path=False)], force=True)
    logging.getLogger("tuneforge").setLevel(level)


@app.command()
def demo(
    method: Annotated[str, typer.Option(help="full | lora | head | tfidf | lstm")] = "full",
    output_dir: Annotated[str, typer.Option("--output-dir", help="Parent directory of the run.")] = "runs",
    overrides: SetOption = None,
) -> None:
    """Fine-tune all-MiniLM-L6-v2 on BBC News topics (both ship with the install) and print test metrics."""
    from tuneforge.demo import demo_config
    from tuneforge.engine.run import train as run_training

    config = demo_config(method=method, output_dir=output_dir, overrides=overrides)
    _print_result(run_training(config))


@app.command()
def train(
    config: Annotated[Optional[Path], typer.Argument(help="YAML run config.", show_default=False)] = None,
    overrides: SetOption = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue an interrupted run directory.")] = None,
    nproc: Annotated[Optional[int], typer.Option(min=1, help="Train in N processes per node under torchrun (full/lora).")] = None,
    max_restarts: Annotated[int, typer.Option(min=0, help="With --nproc: restart the group this often after a failure.")] = 0,
    nnodes: Annotated[str, typer.Option(help="With --nproc: number of nodes (or MIN:MAX).")] = "1",
    node_rank: Annotated[int, typer.Option(min=0, help="With --nproc: this node's rank.")] = 0,
    rdzv_endpoint: Annotated[Optional[str], typer.Option(help="With --nproc: HOST:PORT of the c10d rendezvous.")] = None,
    rdzv_id: Annotated[Optional[str], typer.Option(help="With --nproc: job id, the same on every node.")] = None,
) -> None:
    """Train, evaluate and save a model as the config says; prints the run directory last. See docs/scaling.md."""
    from tuneforge.config import load_config
    from tuneforge.engine.run import train as run_training

    if resume is not None and (config is not None or overrides):
        raise UsageProblem("--resume takes the run's saved config; do not pass CONFIG or --set with it")
    if resume is None and config is None:
        raise UsageProblem("give a CONFIG file, or --resume RUN_DIR")
    if nproc is None and nnodes == "1" and (max_restarts or node_rank or rdzv_endpoint or rdzv_id):
        raise UsageProblem("--max-restarts, --node-rank, --rdzv-endpoint and --rdzv-id go with --nproc N")
    if nproc is not None or nnodes != "1":
        from tuneforge.launch import Launch, check_distributable, run_torchrun

        check_distributable(load_config(config, overrides) if resume is None else None, resume=resume)
        run_torchrun(sys.argv[1:], Launch(nproc or 1, max_restarts, nnodes, node_rank, rdzv_endpoint, rdzv_id))
        return
    with _exit_on_sigterm():  # torchrun stops a group with SIGTERM: run.json then says the run failed
        _print_result(run_training(load_config(config, overrides)) if resume is None else run_training(None, resume=resume))  # type: ignore[arg-type]


@app.command()
def tune(
    config: Annotated[Path, typer.Argument(help="YAML run config with a tune.space section.")],
    overrides: SetOption = None,
    trials: Annotated[Optional[int], typer.Option(min=1, help="Finished trials to reach (default tune.trials).")] = None,
    timeout: Annotated[Optional[float], typer.Option(min=1, help="Start no new trial after this many seconds.")] = None,
) -> None:
    """Search hyper-parameters with Optuna; rerun to continue, run on several machines to share."""
    from tuneforge.config import load_config
    from tuneforge.tune.study import tune as run_study

    result = run_study(load_config(config, overrides), trials=trials, timeout_s=timeout)
    table = Table(
        "setting", "best value", title=f"{result.finished} finished, {result.failed} failed; best validation = {result.best_value}"
    )
    for key, value in result.best_params.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    out.print(table)
    for name, path in result.files.items():
        err.print(f"{name}: {path}")
    print(result.files.get("best_yaml", result.study_dir))


@app.command()
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    data: Annotated[Path, typer.Option(help="Labeled csv / jsonl / parquet file.")],
    text_column: Annotated[Optional[str], typer.Option(help="Defaults to the run's data.text_column.")] = None,
    label_column: Annotated[Optional[str], typer.Option(help="Defaults to the run's data.label_column.")] = None,
) -> None:
    """Evaluate a trained run on a labeled file; writes RUN_DIR/eval/<file>/."""
    from tuneforge.analysis.on_demand import evaluate_run

    metrics, out_dir = evaluate_run(run_dir, data, text_column=text_column, label_column=label_column)
    _print_metrics(metrics)
    print(out_dir)


@app.command()
def predict(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (or its model/ folder).")],
    texts: Annotated[Optional[list[str]], typer.Argument(help="Texts to score.", show_default=False)] = None,
    input: Annotated[Optional[Path], typer.Option("--input", "-i", help="File to score (csv / jsonl / parquet).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Where to write the scored file (never the input).")] = None,
    text_column: Annotated[str, typer.Option(help="Text column of --input.")] = "text",
    encoding: Annotated[str, typer.Option(help="Text encoding of a csv / jsonl --input (e.g. latin-1).")] = "utf-8",
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per forward pass.")] = 32,
    variant: Annotated[str, typer.Option(help="original, recommended, auto, or a compressed variant name.")] = "auto",
    long_texts: Annotated[
        str, typer.Option(help="Texts over the model window: truncate (score the start) or chunk (average every window).")
    ] = "truncate",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")] = False,
    engine: Annotated[str, typer.Option(help="File scoring in this process (local) or on Ray actors (ray).")] = "local",
    address: Annotated[Optional[str], typer.Option(help="--engine ray: an existing Ray cluster (default: start a local one).")] = None,
    workers: Annotated[
        Optional[int], typer.Option(min=1, help="--engine ray: actors, one loaded model each (default: one per CPU).")
    ] = None,
) -> None:
    """Score texts given as arguments (labels, tags or entities, as the run's task says), or a whole file into another file."""
    from dataclasses import asdict

    from tuneforge.predict.files import score_file
    from tuneforge.predict.predictor import Predictor

    if (input is None) != (output is None):
        raise UsageProblem("--input and --output go together")
    if input is None and not texts:
        raise UsageProblem("give TEXT arguments, or --input FILE --output FILE")
    if input is not None and texts:
        raise UsageProblem("give either TEXT arguments or --input/--output, not both")
    if engine not in ("local", "ray"):
        raise UsageProblem(f"--engine must be local or ray, got {engine!r}")
    if engine == "ray" or address or workers:
        if input is None:
            raise UsageProblem("--engine ray, --address and --workers score files: give --input and --output")
        if engine != "ray":
            raise UsageProblem("--address and --workers go with --engine ray")
        from tuneforge.predict.ray_scoring import RayScoring

        scoring = RayScoring(run_dir, workers=workers, address=address, batch_size=batch_size, variant=variant, long_texts=long_texts)
        try:
            with _exit_on_sigterm():
                stats = score_file(None, input, output, text_column=text_column, encoding=encoding, scoring=scoring)
        finally:
            scoring.close()
        err.print(f"scored {stats['rows']} rows in {stats['seconds']} s on {scoring.workers} Ray actor(s)")
        print(stats["output"])
        return
    predictor = Predictor.load(run_dir, batch_size=batch_size, variant=variant, long_texts=long_texts)
    if input is not None:
        with _exit_on_sigterm():  # the unfinished output's temporary file is removed on the way out
            stats = score_file(predictor, input, output, text_column=text_column, encoding=encoding)
        err.print(f"scored {stats['rows']} rows in {stats['seconds']} s")
        print(stats["output"])
        return
    predictions = predictor.predict(texts)
    if as_json:
        for text, p in zip(texts, predictions):
            print(json.dumps({"text": text, **asdict(p)}, ensure_ascii=False))
        return
    table = Table("text", *predictor.task.display_columns)
    for text, p in zip(texts, predictions):
        table.add_row(text if len(text) < 60 else text[:57] + "...", *predictor.task.display(p))
    out.print(table)


@app.command()
def serve(
    run_dirs: Annotated[list[str], typer.Argument(help="Run directories to serve, each RUN_DIR or NAME=RUN_DIR.", show_default=False)],
    host: Annotated[Optional[str], typer.Option(help="Interface to bind (default 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option(help="TCP port (default 8000).")] = None,
    workers: Annotated[
        Optional[int], typer.Option(min=1, max=64, help="Worker processes on the port, each with its own copy of the models (default 1).")
    ] = None,
    overrides: SetOption = None,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="Serve a non-loopback --host without API keys (otherwise refused).")] = False,
) -> None:
    """Serve runs over HTTP: POST /v1/classify, GET /v1/models, /healthz, /readyz, /metrics, /docs.

    API keys: TUNEFORGE_API_KEYS (comma-separated) or --set serve.api_keys_file=FILE. See docs/serving.md."""
    from tuneforge.serve.launch import serve as run_server
    from tuneforge.serve.settings import load_serve_settings

    extra = [f"serve.host={json.dumps(host)}"] if host else []  # quoted: '::' is YAML for a mapping
    extra += [f"serve.port={port}"] if port is not None else []
    extra += [f"serve.workers={workers}"] if workers is not None else []
    run_server(run_dirs, load_serve_settings([*(overrides or []), *extra]), no_auth=no_auth)


@app.command()
def compress(
    run_dir: Annotated[Path, typer.Argument(help="A full or lora run directory, or a chat run with a generator.")],
    methods: Annotated[
        Optional[str],
        typer.Option(
            help="Comma-separated: onnx, int8 (ONNX Runtime), torch-int8, distill, prune (= prune-heads + prune-magnitude); "
            "onnx/int8/torch-int8 also apply to the distill and prune-heads students. Default onnx,int8. "
            "Chat runs: int8 (the generator, made at load time)."
        ),
    ] = None,
    budget: Annotated[Optional[float], typer.Option(help="Accuracy points the recommended variant may lose (default 0.5).")] = None,
    overrides: SetOption = None,
) -> None:
    """Make smaller and faster variants of a run's model; measure size, latency, throughput and accuracy of each.

    Settings: --set compress.student_layers=3, compress.epochs=3, compress.head_fraction=0.5, compress.sparsity=0.5 ...
    """
    from tuneforge.compress.run import compress_run
    from tuneforge.compress.settings import load_compress_settings
    from tuneforge.rundir import RunDir

    settings = load_compress_settings(overrides, accuracy_budget=budget)
    names = None if methods is None else [m.strip() for m in methods.split(",") if m.strip()]
    report = compress_run(run_dir, methods=names, settings=settings)
    budget = settings.accuracy_budget
    if report.get("task") == "chat":
        from tuneforge.cli_chat import print_chat_tradeoffs

        print_chat_tradeoffs(report)
        print(RunDir(run_dir).compress_dir)
        return
    table = tradeoff_table(
        f"trade-offs on {report['split_rows']} held-out texts (* recommended)",
        ("MB", "p50 ms", "p95 ms", "texts/s", "accuracy", "F1", "agree"),
    )
    for r in report["variants"]:
        table.add_row(
            r["variant"] + (" *" if r["variant"] == report["recommended"] else ""),
            f"{r['size_mb']:.1f}",
            f"{r['latency_p50_ms']:.1f}",
            f"{r['latency_p95_ms']:.1f}",
            f"{r['throughput_texts_per_s']:.1f}",
            f"{r['accuracy']:.4f}",
            f"{r['macro_f1']:.4f}",
            f"{r['agreement']:.3f}",
        )
    out.print("p50/p95: latency at batch 1; texts/s: batch 32; F1: macro-F1; agree: same prediction as the original")
    out.print(table)
    out.print(f"recommended (fastest within {budget} accuracy points): {report['recommended']}")
    print(RunDir(run_dir).compress_dir)


@app.command()
def runs(
    directory: Annotated[Path, typer.Option("--dir", help="Parent directory of runs.")] = Path("runs"),
    trained_on: Annotated[
        Optional[str], typer.Option(help="Only runs whose data held any of these rows: a data file (recommend: interactions), or one text.")
    ] = None,
    text_column: Annotated[str, typer.Option(help="Text column of --trained-on.")] = "text",
    user: Annotated[
        Optional[list[str]],
        typer.Option("--user", help="Only runs that saw any interaction of this user id, or of a file of ids; repeatable."),
    ] = None,
    user_column: Annotated[str, typer.Option(help="Id column of a --user table file (csv / jsonl / parquet).")] = "user",
    prune: Annotated[
        bool, typer.Option("--prune", help="Delete finished runs older than their own output.retention (runs without one stay).")
    ] = False,
    prune_older_than: Annotated[
        Optional[float], typer.Option(help="Delete finished runs that started more than this many days ago, whatever their retention.")
    ] = None,
) -> None:
    """List runs with their task, method, data, main metric and time; damaged ones show as unreadable."""
    from tuneforge.rundir import list_runs

    if prune or prune_older_than is not None:
        from tuneforge.rundir import prune_runs

        deleted = prune_runs(directory, older_than_days=prune_older_than)
        for path in deleted:
            print(f"deleted {path}")
        if not deleted:
            err.print(f"nothing to delete under {directory}")
        return
    found = list_runs(directory)
    if trained_on is not None or user:
        from tuneforge.cli_runs import runs_trained_on, user_ids

        found = runs_trained_on(found, trained_on, text_column, user_ids(user, user_column) if user else None)
    if not found:
        err.print(f"no runs under {directory}")
        return
    header = ("run", "status", "task", "method", "data", "metric", "accuracy", "time (s)", "started")
    rows = [
        (
            r.path.name,
            r.status,
            r.task,
            r.method,
            r.data,
            f"{r.metric_name}={r.metric:.4f}" if r.metric is not None else (r.problem or "-"),
            f"{r.accuracy:.4f}" if r.accuracy is not None else "-",
            f"{r.seconds:.0f}" if r.seconds else "-",
            r.started,
        )
        for r in found
    ]
    if not out.is_terminal:  # piped: one tab-separated line per run, nothing cut off
        for row in (header, *rows):
            print("\t".join(row))
        return
    table = Table(*header)
    for row in rows:
        table.add_row(*row)
    out.print(table)


# Commands beyond training and predicting live in their own modules: plan; recommend, explain, report, forget;
# ask, chat, kb (task chat); pretrain (task lm).
from tuneforge import cli_chat, cli_lm, cli_plan, cli_runs  # noqa: E402,F401 - registers them on `app` (tuneforge.cli_common)


def main() -> None:
    """Entry point: usage errors exit 2 (typer), our own errors 2 with one line on stderr, anything else 1."""
    try:
        app()
    except TuneforgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", 2))
    except Exception as exc:  # a bug or an environment failure: keep the traceback, exit 1
        import traceback

        traceback.print_exc()
        print(f"error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
