"""`tuneforge evaluate RUN_DIR --data FILE`: score a labeled file with a trained run."""

from __future__ import annotations

import re
from pathlib import Path

from tuneforge.config import load_config
from tuneforge.data.clean import clean_frame
from tuneforge.data.load import read_table
from tuneforge.data.prepare import check_known_labels
from tuneforge.evaluate.report import evaluate_frame
from tuneforge.predict.predictor import Predictor
from tuneforge.runs import CONFIG_FILE, require_run_dir


def evaluate_run(
    run_dir: str | Path, data_path: str | Path, *, text_column: str | None = None, label_column: str | None = None
) -> tuple[dict, Path]:
    """Evaluate on a new file; results go to `RUN_DIR/eval/<file stem>/` so the run's own eval stays."""
    run_dir = require_run_dir(run_dir)
    data_cfg = load_config(run_dir / CONFIG_FILE).data
    text_column = text_column or data_cfg.text_column
    label_column = label_column or data_cfg.label_column
    frame, blank = read_table(data_path, text_column=text_column, label_column=label_column, fmt="auto", encoding=data_cfg.encoding)
    frame, _ = clean_frame(
        frame,
        text_column=text_column,
        label_column=label_column,
        strip_html=data_cfg.strip_html,
        dedupe=data_cfg.dedupe,
        empty_text=data_cfg.empty_text,
        blank_lines=blank,
    )
    predictor = Predictor.load(run_dir, batch_size=load_config(run_dir / CONFIG_FILE).train.eval_batch_size)
    check_known_labels(frame, predictor.labels, label_column=label_column)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(data_path).stem) or "data"
    out_dir = run_dir / "eval" / name
    return evaluate_frame(predictor, frame, out_dir, split=str(data_path)), out_dir
