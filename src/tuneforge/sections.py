"""The sections of a run config (data, model, train, tune, recommend, evaluate, tracking...) as pydantic models.

Each section forbids unknown keys and says what every setting means; `config.py`
puts them together into `RunConfig` and does the loading, overrides and error messages.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Method = Literal["full", "lora", "head", "tfidf", "lstm", "auto"]
Scheduler = Literal["linear", "cosine", "constant"]
EmptyTextPolicy = Literal["error", "drop"]

SEED_MAX = 2**32 - 1  # numpy's legacy seeding accepts no more


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


AugmentOperation = Literal["insert", "replace", "delete", "swap"]


class AugmentConfig(_Section):
    """Extra training texts made by small word edits (EDA); the validation and test splits are never touched."""

    operations: list[AugmentOperation] = Field(
        ["insert", "replace", "delete", "swap"],
        min_length=1,
        description="Edits a copy may get (one per copy, drawn at random): insert a neighbour of one of the text's words, "
        "replace words by neighbours, delete words, swap two words.",
    )
    probability: float = Field(0.1, gt=0, le=0.5, description="Share of a text's words each edit changes (at least one word).")
    copies: int = Field(2, ge=1, le=32, description="Edited copies made of each training text (copies equal to the original are dropped).")
    seed: int | None = Field(None, ge=0, le=SEED_MAX, description="Seed of the edits; None: train.seed.")
    neighbours: int = Field(5, ge=1, le=100, description="insert/replace: a word's replacement is drawn from its this many nearest words.")
    embeddings: str | None = Field(
        None,
        description="insert/replace: the model whose input-embedding matrix gives nearest words (cosine, whole-word tokens); "
        "None: model.name (also for tfidf runs).",
    )

    @field_validator("operations")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        repeated = sorted({v for v in value if value.count(v) > 1})
        if repeated:
            raise ValueError(f"lists {', '.join(repeated)} more than once")
        return value

    @property
    def needs_neighbours(self) -> bool:
        return bool({"insert", "replace"} & set(self.operations))


class DataConfig(_Section):
    train: str = Field(description="Training file (csv, jsonl, parquet) or a bundled set such as 'bundled:bbc-news'.")
    validation: str | None = Field(None, description="Validation file; split from train when absent.")
    test: str | None = Field(None, description="Test file; split from train when no validation file is given either.")
    text_column: str = Field("text", description="Column holding the input text.")
    label_column: str = Field(
        "label", description="Column holding the label (multilabel: a JSON list or a delimited string; entities: character spans)."
    )
    label_separator: str = Field(
        "|", min_length=1, description="Task multilabel: separator of labels given as one string, e.g. 'news|sport'."
    )
    format: Literal["auto", "csv", "jsonl", "parquet", "conll"] = Field(
        "auto", description="File format; 'auto' uses the extension (.conll/.bio: token-per-line BIO tags, for task entities)."
    )
    encoding: str = Field("utf-8", description="Text encoding of csv/jsonl files.")
    validation_fraction: float = Field(0.1, gt=0, lt=0.5, description="Share of train held out for validation.")
    test_fraction: float = Field(0.1, gt=0, lt=0.5, description="Share of train held out for test (single-file input).")
    max_rows: int | None = Field(None, ge=10, description="Stratified subsample of the training file, for quick runs.")
    strip_html: bool = Field(True, description="Remove HTML tags and unescape entities (a recorded transform, replayed at prediction).")
    redact: list[str] | None = Field(
        None,
        description="PII to replace before the model sees text, in training, predict and serve alike: EMAIL, PHONE, PERSON, LOCATION, "
        "CREDIT_CARD, IBAN, IP, URL, DATE, US_SSN, UK_NHS, CRYPTO (extra 'privacy').",
    )
    redact_strategy: Literal["replace", "hash"] = Field(
        "replace", description="replace: typed placeholders like <EMAIL>; hash: <EMAIL_1a2b3c4d>, one salted pseudonym per value."
    )
    dedupe: bool = Field(True, description="Drop exact duplicate (text, label) rows.")
    empty_text: EmptyTextPolicy = Field("error", description="A labeled row with empty text: 'error' stops, 'drop' removes and counts it.")
    augment: AugmentConfig | None = Field(
        None,
        description="Add word-edited copies of the training texts only, after splitting (recorded in data_report.json). "
        "Off by default: on k-shot BBC News it did not measurably help (docs/tasks.md).",
    )
    streaming: bool = Field(
        False,
        description="Read, clean, dedupe and split the data in chunks and train incrementally (task classify, methods tfidf and head): "
        "memory stays flat in the file size (docs/scaling.md).",
    )
    chunk_rows: int = Field(10_000, ge=1, description="data.streaming: rows read, cleaned and written per chunk.")
    shuffle_buffer: int = Field(
        10_000, ge=1, description="data.streaming: training rows held at once to shuffle the stream (bigger: closer to a full shuffle)."
    )


class ModelConfig(_Section):
    name: str = Field("minilm-l6", description="Registry alias, local directory or hub id of the pretrained encoder.")
    trust_remote_code: bool = Field(False, description="Allow code shipped with a hub model to run. Off unless you trust it.")


class LoraConfig(_Section):
    r: int = Field(8, ge=1, description="Rank of the LoRA update matrices.")
    alpha: int = Field(16, ge=1, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout on the LoRA path.")
    target_modules: list[str] | None = Field(None, description="Module names to adapt; None lets peft pick by architecture.")


class HeadConfig(_Section):
    pooling: Literal["mean", "cls"] = Field("mean", description="How token vectors become one text vector.")
    c_grid: list[float] = Field(
        [0.1, 1.0, 10.0], min_length=1, description="Inverse regularisation strengths tried; the best on validation wins."
    )


class TfidfConfig(_Section):
    max_features: int = Field(50_000, ge=10, description="Vocabulary size cap.")
    ngram_max: int = Field(2, ge=1, le=3, description="Longest word n-gram.")
    c: float = Field(10.0, gt=0, description="Inverse regularisation strength of the logistic regression.")
    hash_features: int = Field(
        2**20, ge=16, le=2**24, description="data.streaming: columns of the hashed n-gram space (no vocabulary is held in memory)."
    )


class LstmConfig(_Section):
    """`method: lstm`: word embeddings learnt from scratch + a bidirectional LSTM; no pretrained weights.

    Shared train keys apply too: max_length (words kept per text), batch_size, learning_rate (Adam),
    weight_decay, epochs / max_epochs, early_stopping_patience, label_smoothing, class_weight, seed."""

    embedding_dim: int = Field(128, ge=8, le=1024, description="Size of each word vector (randomly initialised, learnt).")
    hidden_size: int = Field(
        128, ge=8, le=2048, description="LSTM units per direction (the text vector is twice this, or four times for max-mean)."
    )
    layers: int = Field(1, ge=1, le=4, description="Stacked BiLSTM layers.")
    dropout: float = Field(0.3, ge=0, lt=1, description="Dropout on the word vectors, between stacked layers and before the output layer.")
    pooling: Literal["max", "mean", "max-mean"] = Field(
        "max", description="How the LSTM's outputs over the words become one text vector (max-mean: both, concatenated)."
    )
    vocab_size: int = Field(
        30_000, ge=10, le=1_000_000, description="Cap on the vocabulary (most frequent training words, plus <pad> and <unk>)."
    )
    min_freq: int = Field(2, ge=1, description="Words seen fewer times in the training split become <unk>.")


class PrivacyConfig(_Section):
    epsilon: float = Field(gt=0, description="Privacy budget ε the training may spend (smaller: more private, less accurate).")
    delta: float | None = Field(None, gt=0, lt=1, description="δ of (ε, δ)-DP; None: 1 / (10 x training rows).")
    max_grad_norm: float = Field(1.0, gt=0, description="Each example's gradient is clipped to this norm before noise is added.")
    epochs: int = Field(
        30,
        ge=1,
        le=1000,
        description="Passes of DP-SGD over the training rows, all run (the accountant plans for them: no early stopping). "
        "Left out: 30 for head; full/lora: train.epochs rounded up, or 3.",
    )
    batch_size: int = Field(64, ge=1, description="Expected rows per step (Poisson sampling draws each row with probability batch/n).")
    learning_rate: float = Field(
        0.5, gt=0, description="SGD learning rate of the private head (method head; full/lora use train.learning_rate with AdamW)."
    )


# Learning-rate defaults per method (body / adapters, head). LoRA adapters need a far larger rate than full
# fine-tuning (at 5e-5 they learn almost nothing); a new head learns faster than a pretrained body may move.
# lstm: Adam on a network learnt from scratch.
# DP-SGD fine-tunes run every planned epoch (no early stopping): without train.epochs, this many.
PRIVATE_FINE_TUNES = ("full", "lora")
PRIVATE_FINE_TUNE_EPOCHS = 3
FLOOR_TITLES = {"probe": "frozen-encoder probe", "tfidf": "TF-IDF baseline"}  # train.floor entries, as run summaries name them
FLOOR_METHODS = {"probe": "head", "tfidf": "tfidf"}  # each train.floor entry as the method whose model it is
LEARNING_RATES = {"full": (5e-5, 1e-3), "lora": (1e-3, 1e-3), "head": (None, None), "tfidf": (None, None), "lstm": (2e-3, None)}


class TrainConfig(_Section):
    @field_validator("budget")
    @classmethod
    def _budget_is_a_duration(cls, value: str | None) -> str | None:
        if value is not None:
            from tuneforge.durations import parse_duration

            if parse_duration(value) <= 0:
                raise ValueError("must be more than zero")
        return value

    method: Method = Field(
        "full",
        description="full fine-tuning, lora adapters, a frozen-encoder head, a tfidf baseline, an lstm baseline (BiLSTM from scratch), "
        "or auto: the best that fits train.budget.",
    )
    budget: str | None = Field(
        None,
        description="method auto: the time the whole run may take (e.g. 30m, 1.5h); method, epochs, max_length and rows are chosen to fit.",
    )
    epochs: float | None = Field(
        None, gt=0, le=100, description="Passes over the training data; None: until validation stops improving, at most max_epochs."
    )
    max_epochs: float = Field(20, gt=0, le=100, description="Cap on passes when train.epochs is None (early stopping decides).")
    learning_rate: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Peak AdamW learning rate of the pretrained body (full) or the adapters (lora), or Adam's rate (lstm); None: the method's default.",
    )
    head_learning_rate: float | None = Field(
        None, gt=0, le=1, description="Peak learning rate of the task head (new, or warm-started by the probe); None: the method's default."
    )
    warm_start: Literal["probe", "none"] = Field(
        "probe",
        description="full/lora: start the task head from the frozen-encoder probe (the head method's solution), then fine-tune (LP-FT).",
    )
    warm_start_logit_std: float | None = Field(
        1.0,
        gt=0,
        description="Spread of the warm-started head's training logits (the probe is shrunk to it so gradients reach the encoder); None keeps the probe's own.",
    )
    floor: list[Literal["probe", "tfidf"]] = Field(
        ["probe", "tfidf"],
        description="full/lora: baselines fitted on the same splits beside the fine-tune, their validation scores recorded: the "
        "frozen-encoder probe (the head method) and the TF-IDF baseline (seconds to fit), where the task has that method.",
    )
    keep: Literal["best", "fine-tuned"] = Field(
        "best",
        description="best: if a train.floor baseline beats the fine-tuned model on validation, the run keeps that baseline "
        "(and says so); fine-tuned: always the fine-tuned model.",
    )
    batch_size: int = Field(
        16,
        ge=1,
        le=4096,
        description="Examples per batch; one optimiser step sees batch_size x gradient_accumulation_steps examples, on any number of processes (docs/scaling.md).",
    )
    group_by_length: bool = Field(
        True, description="Batch texts of similar length together (far less padding on short, uneven texts); batch order stays random."
    )
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="Arithmetic of transformer training: auto = bf16 mixed precision where the device computes bf16 natively "
        "(CPUs with AVX512-BF16/AMX, recent GPUs), fp16 on older GPUs, else fp32 (docs/tasks.md).",
    )
    compile: bool = Field(
        False,
        description="full/lora: train the model through torch.compile (inductor; needs a C++ compiler on CPU). Off by default: on a "
        "2-core CPU its steps were 7% faster but compiling made a MiniLM epoch take 2x as long (docs/scaling.md).",
    )
    eval_batch_size: int = Field(64, ge=1, le=4096, description="Examples per forward pass when predicting.")
    max_length: int = Field(128, ge=8, le=8192, description="Tokens kept per text; longer texts are truncated.")
    seed: int = Field(42, ge=0, le=SEED_MAX, description="Seed for splits, initialisation, shuffling and dropout (0 to 2**32-1).")
    weight_decay: float = Field(0.01, ge=0, le=1, description="AdamW weight decay.")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="Share of steps spent warming the learning rate up.")
    scheduler: Scheduler = Field("cosine", description="Learning-rate decay after warmup.")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="Label-smoothing factor of the cross-entropy loss.")
    gradient_accumulation_steps: int = Field(1, ge=1, le=1024, description="Batches accumulated per optimiser step.")
    early_stopping_patience: int | None = Field(2, ge=1, description="Evaluations without improvement before stopping; None disables.")
    metric: Literal["macro_f1", "accuracy", "micro_f1"] = Field(
        "macro_f1",
        description="Validation metric that picks the best checkpoint (multilabel accuracy = subset accuracy; entities = entity-level F1).",
    )
    positive_label: str | None = Field(
        None,
        description="Two-label classify: the rare label that matters (spam, fraud); its probability threshold is tuned on validation for F1.",
    )
    class_weight: Literal["none", "balanced"] = Field(
        "none",
        description="balanced: weigh each label by the inverse of its frequency (head, tfidf, lstm on classify, and the probe of full/lora).",
    )
    decision_threshold: float | None = Field(
        None, gt=0, lt=1, description="Task multilabel: one threshold for every label; None tunes one per label on validation."
    )
    checkpoint_every: int | None = Field(None, ge=1, description="Checkpoint (and evaluate) every N steps; None means every epoch.")
    keep_checkpoints: int = Field(2, ge=1, description="Newest checkpoints kept on disk (the best one is always kept).")
    privacy: PrivacyConfig | None = Field(
        None,
        description="Differentially private training (DP-SGD; methods head, lora, full): {epsilon, delta, max_grad_norm, ...}; "
        "ε spent is recorded.",
    )
    lora: LoraConfig = Field(default_factory=LoraConfig)
    head: HeadConfig = Field(default_factory=HeadConfig)
    tfidf: TfidfConfig = Field(default_factory=TfidfConfig)
    lstm: LstmConfig = Field(default_factory=LstmConfig)

    @model_validator(mode="before")
    @classmethod
    def _method_defaults(cls, data: Any) -> Any:
        """Fill learning rates the config leaves out with the method's defaults, so config.yaml records what ran."""
        if isinstance(data, dict):
            body, head = LEARNING_RATES.get(data.get("method", "full"), (None, None))
            data = dict(data)
            if data.get("learning_rate") is None and body is not None:
                data["learning_rate"] = body
            if data.get("head_learning_rate") is None and head is not None:
                data["head_learning_rate"] = head
            privacy = data.get("privacy")
            if isinstance(privacy, dict) and "epochs" not in privacy and data.get("method", "full") in PRIVATE_FINE_TUNES:
                data["privacy"] = {**privacy, "epochs": math.ceil(data.get("epochs") or PRIVATE_FINE_TUNE_EPOCHS)}
        return data

    def baselines_fitted(self, task_methods) -> list[str]:
        """full/lora: the baselines the run fits (the `train.floor` ones, and the probe for the warm start), where the
        task has their method; the engine fits them and the planner prices them."""
        wanted = {*self.floor, *(["probe"] if self.warm_start == "probe" else [])}
        return [name for name, method in FLOOR_METHODS.items() if name in wanted and method in task_methods]

    @property
    def planned_epochs(self) -> float:
        """The epoch count the schedule is built for: train.epochs, or the cap when early stopping decides."""
        return self.epochs if self.epochs is not None else self.max_epochs


class OutputConfig(_Section):
    dir: str = Field("runs", description="Parent directory of run directories (relative to where you run).")
    name: str | None = Field(None, description="Run name prefix; defaults to '<method>-<data>'.")
    retention: str | None = Field(
        None,
        description="Keep this run's folder at most this long after it started (e.g. 30d, 12h); "
        "`tuneforge runs --prune` deletes finished runs past their own retention. None: kept until deleted.",
    )

    @field_validator("retention")
    @classmethod
    def _duration(cls, v: str | None) -> str | None:
        if v is not None:
            from tuneforge.durations import parse_duration

            if parse_duration(v) <= 0:  # ValueError names the accepted forms
                raise ValueError("must be more than zero")
        return v

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str | None) -> str | None:
        if v is not None and (not v or "/" in v or v.startswith(".")):
            raise ValueError("must be a plain folder name (no '/', not starting with '.')")
        return v


class CostConfig(_Section):
    usd_per_hour: float = Field(0.10, ge=0, description="Price of this machine per hour, for the cost estimate in cost.json.")


class ParamSpace(_Section):
    """One searched setting: a range (`low`, `high`, optional `log` / `step`) or a list of `choices`."""

    low: float | None = Field(None, description="Lower bound of a range.")
    high: float | None = Field(None, description="Upper bound of a range.")
    log: bool = Field(False, description="Sample the range on a log scale (learning rates).")
    step: float | None = Field(None, gt=0, description="Grid step of a range; integers when low, high and step are whole.")
    choices: list[Any] | None = Field(None, min_length=1, description="Explicit values to choose from.")

    @model_validator(mode="after")
    def _shape(self) -> ParamSpace:
        if self.choices is not None:
            if self.low is not None or self.high is not None:
                raise ValueError("give either choices or low/high, not both")
            return self
        if self.low is None or self.high is None:
            raise ValueError("give choices, or both low and high")
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self

    @property
    def is_int(self) -> bool:
        whole = lambda v: v is not None and float(v).is_integer()  # noqa: E731
        return self.choices is None and whole(self.low) and whole(self.high) and (self.step is None or whole(self.step)) and not self.log


class TuneConfig(_Section):
    space: dict[str, ParamSpace] = Field(default_factory=dict, description="Dotted setting -> range or choices, e.g. train.learning_rate.")
    sampler: Literal["tpe", "random", "grid"] = Field("tpe", description="tpe (Bayesian), random, or grid over choices/steps.")
    pruner: Literal["median", "halving", "none"] = Field("median", description="Stop poor trials early from their validation scores.")
    trials: int = Field(20, ge=1, description="Finished trials (complete or pruned) the study should reach.")
    timeout_s: float | None = Field(None, gt=0, description="Start no new trial after this many seconds.")
    storage: str | None = Field(None, description="SQLAlchemy URL shared by workers; default a SQLite file in the study folder.")
    study_name: str | None = Field(None, description="Study (and folder) name; default '<method>-<data>'.")
    seed: int | None = Field(None, ge=0, le=SEED_MAX, description="Sampler seed for a reproducible search order (single process).")


class EvaluateConfig(_Section):
    slices: list[str] = Field(
        default_factory=list,
        description="Columns of the data to compare groups by (fairness slices); text length and true label are always sliced.",
    )
    min_slice_rows: int = Field(30, ge=1, description="Groups with fewer evaluated rows are listed but not judged (too noisy).")


class TrackingConfig(_Section):
    backend: Literal["none", "tensorboard", "mlflow"] = Field(
        "none", description="Log training scalars and final metrics to TensorBoard (events in the run) or MLflow (extra 'tracking')."
    )
    uri: str | None = Field(None, description="MLflow tracking URI; default a SQLite store <output.dir>/mlflow.db.")
    experiment: str | None = Field(None, description="MLflow experiment name; default 'tuneforge'.")
