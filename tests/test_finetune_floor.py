"""Fine-tuning that never loses to its own frozen-encoder probe: warm start, per-group learning rates,
training length from validation, and the floor that keeps the better model."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from tuneforge.config import load_config, validate_config
from tuneforge.engine.run import train
from tuneforge.models.artifact import ModelMeta
from tuneforge.predict.predictor import Predictor
from tuneforge.rundir import RunDir

from conftest import write_config


def _evaluations(run_dir) -> list[dict]:
    lines = [json.loads(x) for x in RunDir(run_dir).metrics_file.read_text().splitlines()]
    return [x for x in lines if "eval_macro_f1" in x and not x.get("baseline")]


def _probe_scores(run_dir) -> list[float]:
    lines = [json.loads(x) for x in RunDir(run_dir).metrics_file.read_text().splitlines()]
    return [x["eval_macro_f1"] for x in lines if x.get("probe")]


def test_method_defaults_for_learning_rates_are_filled_in():
    full = validate_config({"data": {"train": "x.csv"}}).train
    lora = validate_config({"data": {"train": "x.csv"}, "train": {"method": "lora"}}).train
    assert (full.learning_rate, full.head_learning_rate) == (5e-5, 1e-3)
    assert (lora.learning_rate, lora.head_learning_rate) == (1e-3, 1e-3)
    assert validate_config({"data": {"train": "x.csv"}, "train": {"learning_rate": 2e-5}}).train.learning_rate == 2e-5
    assert full.epochs is None and full.planned_epochs == full.max_epochs == 20


def test_head_parameters_get_their_own_learning_rate(tiny_bert):
    from transformers import AutoModelForSequenceClassification

    from tuneforge.engine.optim import adamw

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=3)
    groups = adamw(model, body_lr=1e-5, head_lr=1e-3, weight_decay=0.01).param_groups
    head = {id(p) for p in model.classifier.parameters()}
    for group in groups:
        is_head = {id(p) in head for p in group["params"]}
        assert len(is_head) == 1
        assert group["lr"] == (1e-3 if is_head.pop() else 1e-5)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert all(g["weight_decay"] == 0.0 for g in groups if all(p.ndim == 1 for p in g["params"]))


def test_warm_start_begins_at_the_probe_score_and_keeps_mean_pooling(tmp_path, tiny_bert):
    result = train(load_config(write_config(tmp_path, tiny_bert, method="full", epochs=1)))
    first = _evaluations(result.run_dir)[0]
    assert first["step"] == 0  # the warm start is evaluated before any step
    assert first["eval_macro_f1"] == pytest.approx(max(_probe_scores(result.run_dir)), abs=1e-6)
    info = RunDir(result.run_dir).info()["train"]
    assert info["warm_start"] == "probe" and info["learning_rates"] == {"body": 5e-3, "head": 1e-3}
    if info["kept"] == "fine-tuned":
        meta = ModelMeta.read(RunDir(result.run_dir).model_dir)
        assert meta.extra["pooling"] == "mean"
        # reloaded with mean pooling: predictions match the metrics the run reported
        predictor = Predictor.load(result.run_dir)
        assert predictor.backend.model.base_model.pooler is None


def test_early_stopping_decides_the_length_and_the_summary_says_why(tmp_path, tiny_bert):
    config = write_config(
        tmp_path,
        tiny_bert,
        method="full",
        epochs=None,
        max_epochs=8,
        learning_rate=1e-12,
        head_learning_rate=1e-12,
        early_stopping_patience=1,
        keep="fine-tuned",
    )
    result = train(load_config(config))
    info = result.train_info
    assert info["planned_epochs"] == 8 and info["stopped_epoch"] < 8
    assert info["stop_reason"].startswith("early stopping: validation macro_f1 did not improve for 1 evaluations")
    card = RunDir(result.run_dir).model_card_file.read_text()
    assert "Stopped at epoch" in card and "early stopping" in card


def test_a_fine_tune_below_its_probe_keeps_the_probe(tmp_path, tiny_bert):
    """A fresh head that cannot learn (learning rates ~0) ends below the probe: the run keeps the probe and says so."""
    config = write_config(tmp_path, tiny_bert, method="full", epochs=1, warm_start="none", learning_rate=1e-12, head_learning_rate=1e-12)
    result = train(load_config(config))
    info = RunDir(result.run_dir).info()["train"]
    assert info["kept"] == "probe" and "below the frozen-encoder probe" in info["kept_reason"]
    meta = ModelMeta.read(RunDir(result.run_dir).model_dir)
    assert meta.kind == "head" and meta.method == "full" and meta.extra["kept_over"] == "full"
    assert result.metrics["macro_f1"] >= 0.0 and "kept the frozen-encoder probe" in RunDir(result.run_dir).model_card_file.read_text()
    weights = load_file(str(RunDir(result.run_dir).model_dir / "head.safetensors"))
    assert weights["weight"].shape == (3, 32) and torch.isfinite(weights["weight"]).all()


def test_keep_fine_tuned_keeps_it_even_below_the_probe_and_says_which_baseline_was_higher(tmp_path, tiny_bert):
    config = write_config(
        tmp_path, tiny_bert, method="full", epochs=1, warm_start="none", learning_rate=1e-12, head_learning_rate=1e-12, keep="fine-tuned"
    )
    result = train(load_config(config))
    info = result.train_info
    assert info["kept"] == "fine-tuned" and ModelMeta.read(RunDir(result.run_dir).model_dir).kind == "transformer"
    best = max(("probe", "tfidf"), key=lambda name: info[f"{name}_validation_macro_f1"])
    assert info[f"{best}_validation_macro_f1"] > info["best_validation_macro_f1"]  # the premise: a baseline was higher
    title = {"probe": "frozen-encoder probe", "tfidf": "TF-IDF baseline"}[best]
    assert info["kept_note"].startswith(f"the {title} scored higher") and "because train.keep is fine-tuned" in info["kept_note"]
    assert f"Note: the {title} scored higher" in RunDir(result.run_dir).model_card_file.read_text()


def test_multilabel_warm_start_loads_one_row_per_label(tmp_path, tiny_bert):
    from task_data import multilabel_rows, write_jsonl

    data = write_jsonl(tmp_path / "ml.jsonl", multilabel_rows(120, seed=4))
    config = validate_config(
        {
            "task": "multilabel",
            "data": {"train": str(data), "label_column": "tags"},
            "model": {"name": str(tiny_bert)},
            "train": {"method": "lora", "epochs": 1, "batch_size": 8, "max_length": 24, "seed": 1},
            "output": {"dir": str(tmp_path / "runs")},
        }
    )
    info = train(config).train_info
    assert info["warm_start"] == "probe" and "probe_validation_macro_f1" in info


def test_a_fine_tune_below_the_tfidf_baseline_keeps_it_and_records_the_same_score_as_the_tfidf_method(tmp_path, tiny_bert):
    """The floor's TF-IDF is the `tfidf` method itself: same validation score; kept as a working tfidf model folder."""
    from tuneforge.compress.run import compress_run
    from tuneforge.compress.variants import CompressionError

    frozen = {"warm_start": "none", "learning_rate": 1e-12, "head_learning_rate": 1e-12, "floor": ["tfidf"]}
    result = train(load_config(write_config(tmp_path / "full", tiny_bert, method="full", epochs=1, **frozen)))
    alone = train(load_config(write_config(tmp_path / "tfidf", None, method="tfidf")))
    info = RunDir(result.run_dir).info()["train"]
    assert "probe_validation_macro_f1" not in info  # no warm start and no probe in the floor: no probe fitted
    assert info["tfidf_validation_macro_f1"] == pytest.approx(alone.train_info["best_validation_macro_f1"])
    assert info["tfidf_validation_macro_f1"] > info["best_validation_macro_f1"]
    assert info["kept"] == "tfidf" and "below the TF-IDF baseline" in info["kept_reason"]
    lines = [json.loads(x) for x in RunDir(result.run_dir).metrics_file.read_text().splitlines()]
    [tfidf_line] = [x for x in lines if x.get("baseline") == "tfidf"]  # apart from the probe's and the fine-tune's lines
    assert not tfidf_line.get("probe") and tfidf_line["eval_macro_f1"] == info["tfidf_validation_macro_f1"]
    meta = ModelMeta.read(RunDir(result.run_dir).model_dir)
    assert meta.kind == "tfidf" and meta.method == "full" and meta.extra["kept_over"] == "full"
    same = ("accuracy", "macro_f1", "log_loss")  # the same model, evaluated on the same test split
    assert [result.metrics[k] for k in same] == pytest.approx([alone.metrics[k] for k in same])
    card = RunDir(result.run_dir).model_card_file.read_text()
    assert "kept the TF-IDF baseline, not the fine-tuned model" in card and "train.keep: fine-tuned" in card
    assert "- Method: `tfidf` (no pretrained weights: learnt from the training data alone) (kept over the requested `full`" in card
    assert "- Max input length: the whole text" in card
    texts = ["great product, works well", "broke after a day", "it is fine"]
    kept_probs = Predictor.load(result.run_dir).predict_proba(texts)
    assert kept_probs == pytest.approx(Predictor.load(alone.run_dir).predict_proba(texts))
    with pytest.raises(CompressionError, match="kept a baseline over its fine-tune"):
        compress_run(result.run_dir)


def test_an_empty_floor_fits_no_baseline_and_keeps_the_fine_tune(tmp_path, tiny_bert):
    config = write_config(
        tmp_path, tiny_bert, method="full", epochs=1, warm_start="none", learning_rate=1e-12, head_learning_rate=1e-12, floor=[]
    )
    info = train(load_config(config)).train_info
    assert info["kept"] == "fine-tuned" and not [k for k in info if k.endswith("_validation_macro_f1") and not k.startswith("best_")]
    assert "kept_note" not in info  # nothing fitted, nothing to compare


@pytest.mark.parametrize(
    ("fine_tuned", "keep", "floor", "expected"),
    [
        (0.80, "best", ["probe", "tfidf"], "tfidf"),  # the best baseline above the fine-tune
        (0.90, "best", ["probe", "tfidf"], None),  # a tie keeps the fine-tune the user asked for
        (0.80, "best", ["probe"], "probe"),  # a baseline left out of train.floor is recorded, never kept
        (0.80, "fine-tuned", ["probe", "tfidf"], None),
        (None, "best", ["probe", "tfidf"], None),  # no validation score to compare: keep what was trained
    ],
)
def test_the_floor_keeps_the_best_baseline_strictly_above_the_fine_tune(fine_tuned, keep, floor, expected):
    from types import SimpleNamespace

    from tuneforge.engine.floor import Floor, floor_to_keep

    floors = [Floor("probe", 0.85, dict), Floor("tfidf", 0.90, dict)]
    kept = floor_to_keep(floors, fine_tuned, SimpleNamespace(keep=keep, floor=floor))
    assert (kept.name if kept else None) == expected


def test_equal_baselines_keep_the_probe():
    from types import SimpleNamespace

    from tuneforge.engine.floor import Floor, floor_to_keep

    floors = [Floor("probe", 0.9, dict), Floor("tfidf", 0.9, dict)]
    assert floor_to_keep(floors, 0.5, SimpleNamespace(keep="best", floor=["probe", "tfidf"])).name == "probe"


def test_reloading_a_mean_pooled_model_does_not_report_its_pooler_missing(tmp_path, tiny_bert):
    """Its pooler is gone by design; transformers' load report would call it missing and advise training, on every
    load from Python (the CLI sets transformers' verbosity to errors, a library user keeps warnings)."""
    import logging

    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    class Collect(logging.Handler):
        def __init__(self):
            super().__init__()
            self.messages = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    config = write_config(tmp_path, tiny_bert, method="full", epochs=1, keep="fine-tuned", floor=[])
    run = RunDir(train(load_config(config)).run_dir)
    before, logger, seen = hf_logging.get_verbosity(), logging.getLogger("transformers.modeling_utils"), Collect()
    hf_logging.set_verbosity_warning()
    logger.addHandler(seen)
    try:
        AutoModelForSequenceClassification.from_pretrained(run.model_dir)  # plain transformers: the report is there
        plain, seen.messages = seen.messages, []
        predictor = Predictor.load(run.path)
    finally:
        logger.removeHandler(seen)
        hf_logging.set_verbosity(before)
    assert any("LOAD REPORT" in m and "pooler" in m for m in plain)
    assert not any("LOAD REPORT" in m for m in seen.messages) and predictor.backend.model.base_model.pooler is None


def test_the_load_report_filter_lets_through_anything_but_the_pooler():
    import logging

    from tuneforge.models.loading import PoolerOnlyReportFilter

    def record(rows: list[str]) -> logging.LogRecord:
        message = "BertForSequenceClassification LOAD REPORT from: x\nKey | Status |\n" + "\n".join(rows)
        return logging.LogRecord("transformers.modeling_utils", logging.WARNING, __file__, 1, message, None, None)

    keep = PoolerOnlyReportFilter().filter
    assert not keep(record(["bert.pooler.dense.weight | MISSING |", "bert.pooler.dense.bias | MISSING |"]))
    assert keep(record(["bert.pooler.dense.weight | MISSING |", "classifier.weight | MISSING |"]))
    assert keep(record(["bert.encoder.layer.0.attention.self.query.weight | MISMATCH |"]))
    assert keep(logging.LogRecord("t", logging.WARNING, __file__, 1, "an unrelated warning", None, None))


def test_the_demo_keeps_its_fine_tune_and_the_benchmark_measures_the_library_default(monkeypatch):
    """The README predicts with, serves and compresses the demo's transformer; benchmarks measure `keep: best`."""
    import importlib.util
    from pathlib import Path

    from tuneforge.demo import demo_config

    assert demo_config(method="full").train.keep == demo_config(method="lora").train.keep == "fine-tuned"
    assert validate_config({"data": {"train": "x.csv"}}).train.keep == "best"
    assert demo_config(method="full").train.floor == ["probe", "tfidf"]
    path = Path(__file__).parents[1] / "benchmarks" / "classify_quality.py"
    spec = importlib.util.spec_from_file_location("classify_quality", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    calls = []
    monkeypatch.setattr(
        module.subprocess, "run", lambda cmd, **kw: calls.append(cmd[-1]) or type("Done", (), {"returncode": 1, "stderr": ""})()
    )
    with pytest.raises(SystemExit):
        module.run_one("full", 2, Path("/tmp/none"), 42)
    assert "'train.keep=best'" in calls[0]
