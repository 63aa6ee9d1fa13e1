"""`tuneforge evaluate RUN_DIR --data FILE`: score a labeled file with a trained run, as its task evaluates."""

from __future__ import annotations

from pathlib import Path

from tuneforge.predict.runtime import load_runtime
from tuneforge.rundir import RunDir
from tuneforge.tasks import get_task


def evaluate_run(
    run_dir: str | Path, data_path: str | Path, *, text_column: str | None = None, label_column: str | None = None
) -> tuple[dict, Path]:
    """Evaluate on a new file; results go to `RUN_DIR/eval/<file stem>/` so the run's own eval stays."""
    run = RunDir.open(run_dir)
    config = run.read_config()
    overrides = {k: v for k, v in (("text_column", text_column), ("label_column", label_column)) if v}
    config = config.model_copy(update={"data": config.data.model_copy(update=overrides)})
    task = get_task(config.task)
    runtime = load_runtime(task, run.path, batch_size=config.train.eval_batch_size)
    frame = task.load_eval_frame(data_path, config, runtime)
    if task.serves_texts:
        task.check_labels(frame, runtime.labels, label_column=config.data.label_column)
    out_dir = run.eval_subdir(Path(data_path).stem)
    return task.evaluate(runtime, frame, out_dir, split=str(data_path), **task.evaluation_options(config)), out_dir
