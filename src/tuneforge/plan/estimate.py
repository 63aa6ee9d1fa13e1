"""What each training method will take on this data and this machine, before anything is trained.

Time is built up from the run's own structure: every training step and every forward
pass the engine will make (probe embeddings, evaluations, test predictions), each
priced by the calibrated cost of a batch at its padded length (`calibrate.py`), over
batches simulated from the data's token lengths (`batches.py`); plus what the
planner measures directly (reading and splitting the data, tokenising it) and a fixed
overhead for writing the evaluation, card and report. Memory is the calibrated
process peak of the method plus what the data itself takes in memory. `tfidf` is
timed by fitting it on a sample and scaling by rows; `lstm` by training one
epoch on a sample and scaling by rows and planned epochs.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np
import psutil

from tuneforge.devices import training_precision
from tuneforge.durations import parse_duration  # noqa: F401 - the planner's budgets are durations
from tuneforge.plan.batches import file_order_batches, sorted_batches, training_batches
from tuneforge.plan.calibrate import calibration, startup_seconds
from tuneforge.plan.project import batch_work
from tuneforge.tasks.augment import augment_training

SAMPLE_TEXTS = 4000  # token lengths are measured on at most this many texts per split, then scaled
# evaluation, plots, card, report, model save, and what the parts above miss: refitted 2026-11-26 on the
# 1,000-row runs of benchmarks/plan_accuracy.py (mean over-estimate per method taken off; checked on 2,000 rows)
RUN_OVERHEAD_S = {"tfidf": 2.0, "lstm": 3.0, "head": 2.5, "full": 1.5, "lora": 1.5}
LSTM_SAMPLE_ROWS = 512  # the lstm estimate trains one epoch on at most this many training rows
TRANSFORMER_METHODS = ("head", "lora", "full")
PLANNED_TASKS = ("classify", "multilabel")


@dataclass
class MethodPlan:
    method: str
    epochs: float | None
    wall_seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    cost_usd: float
    fits_budget: bool | None = None
    fits_memory: bool = True
    expected: dict | None = None  # {"metric", "value", "source"} from a past run on the same data
    breakdown: dict = field(default_factory=dict)  # seconds by part of the run
    compute: dict = field(default_factory=dict)  # transformer methods: what each model-compute part computes (project.py)
    gpus: list[dict] = field(default_factory=list)  # projections per GPU type (project.py), not measured
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DataStats:
    rows: dict[str, int]
    labels: int
    lengths: dict[str, np.ndarray]  # token lengths (truncated to max_length), a sample of each split
    prepare_seconds: float
    tokenize_seconds: float  # for every text of every split (measured on the sample, scaled)
    data_mb: float  # memory the prepared data and its token ids take
    prepared: object = None  # the PreparedData itself (the tfidf estimate fits on a sample of it)

    def scale(self, split: str) -> float:
        return self.rows[split] / max(len(self.lengths[split]), 1)

    def summary(self) -> dict:
        out = {"rows": self.rows, "labels": self.labels}
        train = self.lengths["train"]
        if len(train):
            out["train_tokens"] = {
                "mean": round(float(train.mean()), 1),
                "p50": int(np.percentile(train, 50)),
                "p99": int(np.percentile(train, 99)),
            }
        return out


def data_stats(config, task, model_path: str | None) -> DataStats:
    """Read and split the data exactly as `train` will, then measure token lengths on a sample."""
    rss0 = psutil.Process().memory_info().rss
    started = time.perf_counter()
    data = augment_training(task.prepare(config, seed=config.train.seed), config, task)
    prepare_seconds = time.perf_counter() - started
    splits = {**data.splits(), "train": data.training_frame()}  # a run trains on the augmented copies too
    rows = {name: len(frame) for name, frame in splits.items()}
    lengths: dict[str, np.ndarray] = {}
    tokenize_seconds = 0.0
    tokens = 0.0
    tokenizer = None
    if model_path is not None:
        from tuneforge.models.loading import load_tokenizer

        tokenizer = load_tokenizer(model_path, name=config.model.name)
    rng = np.random.default_rng(0)
    for name, frame in splits.items():
        texts = frame["text"].tolist()
        if len(texts) > SAMPLE_TEXTS:
            texts = [texts[i] for i in rng.choice(len(texts), SAMPLE_TEXTS, replace=False)]
        if tokenizer is None:
            lengths[name] = np.array([len(t.split()) for t in texts], dtype=np.int64)
            continue
        started = time.perf_counter()
        ids = tokenizer(texts, truncation=True, max_length=config.train.max_length)["input_ids"]
        scale = rows[name] / max(len(texts), 1)
        tokenize_seconds += (time.perf_counter() - started) * scale
        lengths[name] = np.array([len(x) for x in ids], dtype=np.int64)
        tokens += float(lengths[name].sum()) * scale
    data_mb = (psutil.Process().memory_info().rss - rss0) / 2**20 + tokens * 8 * 3 / 2**20  # ids, mask, type ids as int64
    return DataStats(
        rows=rows,
        labels=len(data.labels),
        lengths=lengths,
        prepare_seconds=prepare_seconds,
        tokenize_seconds=tokenize_seconds,
        data_mb=max(data_mb, 0.0),
        prepared=data,
    )


def _priced(batch_lengths: np.ndarray, table: dict[str, float]) -> float:
    """Seconds for these batches, each at the calibrated cost of its padded length (linear between points)."""
    if len(batch_lengths) == 0:
        return 0.0
    points = sorted((int(k), v) for k, v in table.items())
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return float(np.interp(batch_lengths, xs, ys).sum())


def planned_epochs(train) -> tuple[float, str | None]:
    if train.epochs is not None:
        return train.epochs, None
    return train.max_epochs, f"train.epochs is unset: early stopping decides; planned for the cap, max_epochs={train.max_epochs:g}"


def transformer_plan(config, task, stats: DataStats, model_path: str, method: str, *, usd_per_hour: float, refresh=False, progress=None):
    t = config.train
    spec = {
        "method": method,
        "batch_size": t.batch_size,
        "eval_batch_size": t.eval_batch_size,
        "max_length": t.max_length,
        "labels": max(stats.labels, 2),
        "lora": t.lora.model_dump() if method == "lora" else {},
        "precision": training_precision(t.precision),  # training steps are timed in the arithmetic the run will use
    }
    cal = calibration(model_path, spec, refresh=refresh, progress=progress)
    forward = cal["forward"]

    compute: dict[str, dict] = {}

    def forward_pass(split: str, order: str = "sorted", *, part: str, times: float = 1.0) -> float:
        lengths = stats.lengths.get(split)
        if lengths is None:
            return 0.0
        batches = sorted_batches(lengths, t.eval_batch_size) if order == "sorted" else file_order_batches(lengths, t.eval_batch_size)
        _add_work(compute, part, batch_work(batches, t.eval_batch_size, stats.scale(split) * times, kind="forward"))
        return _priced(batches, forward) * stats.scale(split) * times

    parts = {
        "startup": startup_seconds(refresh=refresh),
        "read_and_split": stats.prepare_seconds,
        "tokenize": stats.tokenize_seconds,
        "load_model": cal["load_seconds"],
    }
    epochs, note = (None, None) if method == "head" else planned_epochs(t)
    baselines = [] if method == "head" else t.baselines_fitted(task.methods)  # what the engine fits beside the fine-tune
    uses_probe = method == "head" or "probe" in baselines
    if uses_probe:
        parts["probe_embeddings"] = forward_pass("train", part="probe_embeddings") + forward_pass("validation", part="probe_embeddings")
    if "tfidf" in baselines:
        parts["tfidf_floor"] = tfidf_fit_seconds(config, task, stats)[0]
    if method != "head":
        batches = training_batches(stats.lengths["train"], t.batch_size, grouped=t.group_by_length, seed=t.seed)
        per_epoch = _priced(batches, cal["train_step"])
        compute["training_steps"] = batch_work(batches, t.batch_size, stats.scale("train") * epochs, kind="train")
        steps_per_epoch = int(np.ceil(stats.rows["train"] / t.batch_size))
        evals = epochs if t.checkpoint_every is None else epochs * steps_per_epoch / t.checkpoint_every
        evals += 1 if t.warm_start == "probe" and uses_probe else 0  # the warm start is evaluated before the first step
        parts["training_steps"] = per_epoch * stats.scale("train") * epochs
        parts["validation_evaluations"] = forward_pass("validation", order="file", part="validation_evaluations", times=evals)
    parts["test_predictions"] = forward_pass("test", part="test_predictions") + (
        forward_pass("validation", part="test_predictions") if method != "head" else 0.0
    )
    parts["overhead"] = RUN_OVERHEAD_S[method]
    wall = sum(parts.values())
    plan = MethodPlan(
        method=method,
        epochs=epochs,
        wall_seconds=round(wall, 1),
        cpu_seconds=round(wall * cal["cpu_per_wall"], 1),
        peak_rss_mb=round(cal["peak_rss_mb"] + stats.data_mb, 0),
        cost_usd=round(wall / 3600 * usd_per_hour, 4),
        breakdown={k: round(v, 3) for k, v in parts.items()},
        compute=compute,
    )
    if note:
        plan.notes.append(note)
    return plan


def _add_work(compute: dict, part: str, work: dict) -> None:
    if part not in compute:
        compute[part] = work
        return
    for key in ("batches", "positions", "positions_sq"):
        compute[part][key] += work[key]


def tfidf_fit_seconds(config, task, stats: DataStats) -> tuple[float, float]:
    """(seconds, matrix MB) to fit the tfidf baseline on all training rows: timed on a sample, scaled by rows."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    data = stats.prepared
    n = min(len(data.train), SAMPLE_TEXTS)
    sample = data.train.sample(n=n, random_state=0) if len(data.train) > n else data.train
    cfg = config.train.tfidf
    started = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, cfg.ngram_max), sublinear_tf=True, strip_accents="unicode", max_features=cfg.max_features)
    x = vectorizer.fit_transform(sample["text"].tolist())
    y = task.linear_targets(sample, data.labels)
    task.fit_linear(x, y, x[: min(n, 200)], y[: min(n, 200)], labels=data.labels, c=cfg.c, seed=0, train=config.train)
    scale = len(data.train) / max(n, 1)
    return (time.perf_counter() - started) * scale, x.nnz * 12 / 2**20 * scale  # float64 values + int32 indices


def tfidf_plan(config, task, stats: DataStats, *, usd_per_hour: float) -> MethodPlan:
    """Fit the tfidf baseline on a sample of the training rows, time it, scale by rows."""
    import resource

    fit_seconds, matrix_mb = tfidf_fit_seconds(config, task, stats)
    parts = {"startup": startup_seconds(), "read_and_split": stats.prepare_seconds, "fit": fit_seconds, "overhead": RUN_OVERHEAD_S["tfidf"]}
    wall = sum(parts.values())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return MethodPlan(
        method="tfidf",
        epochs=None,
        wall_seconds=round(wall, 1),
        cpu_seconds=round(wall, 1),  # scikit-learn's fit is single-threaded here
        peak_rss_mb=round(rss + matrix_mb, 0),
        cost_usd=round(wall / 3600 * usd_per_hour, 4),
        breakdown={k: round(v, 3) for k, v in parts.items()},
    )


def lstm_plan(config, task, stats: DataStats, *, usd_per_hour: float) -> MethodPlan:
    """Train the lstm for one epoch on a sample of the training rows, time it, scale by rows and planned epochs."""
    import resource

    import torch

    from tuneforge.models.lstm import BiLstmClassifier, LstmSpec, WordTokenizer, lstm_logits, pad_batch
    from tuneforge.plan.batches import length_batches

    t, data = config.train, stats.prepared
    n = min(len(data.train), LSTM_SAMPLE_ROWS)
    sample = data.train.sample(n=n, random_state=0) if len(data.train) > n else data.train
    texts = sample["text"].tolist()
    started = time.perf_counter()
    tokenizer = WordTokenizer.learn(texts, vocab_size=t.lstm.vocab_size, min_freq=t.lstm.min_freq)
    ids = [tokenizer.ids(x, t.max_length) for x in texts]
    vocabulary_seconds = (time.perf_counter() - started) * len(data.train) / max(n, 1)
    cfg = t.lstm
    model = BiLstmClassifier(
        LstmSpec(len(tokenizer), max(len(data.labels), 2), cfg.embedding_dim, cfg.hidden_size, cfg.layers, cfg.dropout, cfg.pooling)
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.learning_rate)
    started, cpu_started = time.perf_counter(), time.process_time()
    for rows in length_batches([len(x) for x in ids], t.batch_size, np.random.default_rng(0)):
        batch, lengths = pad_batch([ids[i] for i in rows])
        loss = model(batch, lengths).logsumexp(dim=-1).mean()  # any scalar: the cost of a step, not its value
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    train_seconds = time.perf_counter() - started
    cpu_per_wall = (time.process_time() - cpu_started) / max(train_seconds, 1e-9)
    train_row = train_seconds / max(n, 1)
    started = time.perf_counter()
    lstm_logits(model, ids, batch_size=t.eval_batch_size)
    predict_row = (time.perf_counter() - started) / max(n, 1)
    epochs, note = planned_epochs(t)
    rows = stats.rows
    parts = {
        "startup": startup_seconds(),
        "read_and_split": stats.prepare_seconds,
        "vocabulary_and_ids": vocabulary_seconds,
        "training_steps": train_row * rows["train"] * epochs,
        "validation_evaluations": predict_row * rows["validation"] * epochs,
        "test_predictions": predict_row * (rows.get("test", 0) + rows["validation"]),
        "overhead": RUN_OVERHEAD_S["lstm"],
    }
    wall = sum(parts.values())
    plan = MethodPlan(
        method="lstm",
        epochs=epochs,
        wall_seconds=round(wall, 1),
        cpu_seconds=round(wall * cpu_per_wall, 1),
        # this process already holds the prepared data (adding stats.data_mb counted it twice: 1.49x on 2,000 BBC articles)
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0),
        cost_usd=round(wall / 3600 * usd_per_hour, 4),
        breakdown={k: round(v, 3) for k, v in parts.items()},
    )
    if note:
        plan.notes.append(note + " (lstm usually stops after a few epochs)")
    return plan


def expected_from_past_runs(config, method: str) -> dict | None:
    """The best finished run in `output.dir` on the same training data with this method, if any."""
    from tuneforge.rundir import list_runs

    best = None
    for run in list_runs(config.output.dir):
        if run.status != "complete" or run.method != method or run.data != config.data.train or run.metric is None:
            continue
        if best is None or run.metric > best.metric:
            best = run
    if best is None:
        return None
    return {"metric": best.metric_name, "value": round(best.metric, 4), "source": str(best.path)}


def check_budget(plans: list[MethodPlan], budget_s: float | None) -> None:
    available_mb = psutil.virtual_memory().available / 2**20
    for plan in plans:
        plan.fits_budget = None if budget_s is None else plan.wall_seconds <= budget_s
        plan.fits_memory = plan.peak_rss_mb <= available_mb
        if not plan.fits_memory:
            plan.notes.append(f"needs about {plan.peak_rss_mb:.0f} MB; {available_mb:.0f} MB is free now")
