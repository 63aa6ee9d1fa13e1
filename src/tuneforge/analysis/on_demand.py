"""`tuneforge evaluate RUN_DIR --data FILE`: score a labeled file with a trained run, as its task evaluates."""

from __future__ import annotations

from pathlib import Path

from tuneforge.data.prepare import load_clean
from tuneforge.predict.predictor import Predictor
from tuneforge.rundir import RunDir


def evaluate_run(
    run_dir: str | Path, data_path: str | Path, *, text_column: str | None = None, label_column: str | None = None
) -> tuple[dict, Path]:
    """Evaluate on a new file; results go to `RUN_DIR/eval/<file stem>/` so the run's own eval stays."""
    run = RunDir.open(run_dir)
    config = run.read_config()
    overrides = {k: v for k, v in (("text_column", text_column), ("label_column", label_column)) if v}
    data_cfg = config.data.model_copy(update={**overrides, "format": "auto"})
    predictor = Predictor.load(run.path, batch_size=config.train.eval_batch_size)
    frame, _ = load_clean(str(data_path), data_cfg, predictor.task, predictor.meta.transforms)
    predictor.task.check_labels(frame, predictor.labels, label_column=data_cfg.label_column)
    out_dir = run.eval_subdir(Path(data_path).stem)
    return predictor.task.evaluate(predictor, frame, out_dir, split=str(data_path)), out_dir
