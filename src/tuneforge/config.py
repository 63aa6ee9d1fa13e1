"""The run config: validated pydantic models, YAML loading and dotted overrides.

One config drives every stage. Unknown keys and bad values fail here, before any
work starts, with a message naming the setting and what it accepts.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from tuneforge.errors import ConfigError
from tuneforge.sections import (  # noqa: F401 - the sections are part of this module's interface
    SEED_MAX,
    AugmentConfig,
    CostConfig,
    DataConfig,
    EmptyTextPolicy,
    EvaluateConfig,
    HeadConfig,
    LoraConfig,
    Method,
    ModelConfig,
    OutputConfig,
    ParamSpace,
    PrivacyConfig,
    Scheduler,
    TfidfConfig,
    TrackingConfig,
    TrainConfig,
    TuneConfig,
    _Section,
)
from tuneforge.task_sections import CLM_DEFAULT_MODEL, ChatConfig, PretrainConfig, RecommendConfig  # noqa: F401

SettingsT = TypeVar("SettingsT", bound=BaseModel)


# Paths under `data` given in a config file are relative to that file.
DATA_PATH_KEYS = ("train", "validation", "test")
CHAT_PATH_KEYS = ("documents", "eval_queries")

# A config is a few hundred values. YAML aliases can make a tiny file expand into
# billions ("billion laughs"), which validation or an error message would walk:
# refuse big files, and documents that expand past MAX_CONFIG_VALUES.
MAX_CONFIG_BYTES = 1_000_000
MAX_CONFIG_VALUES = 100_000
SHOWN_CHARS = 80  # of a bad value echoed in an error message
# Where train.privacy (DP-SGD) is built: method -> tasks.
PRIVATE_METHODS = {"head": ("classify",), "lora": ("classify", "multilabel"), "full": ("classify", "multilabel")}


class RunConfig(_Section):
    task: str = Field(
        "classify", description="What the run learns: classify, multilabel, entities, recommend, chat or lm (see `tuneforge.tasks`)."
    )
    data: DataConfig
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    cost: CostConfig = Field(default_factory=CostConfig)
    tune: TuneConfig = Field(default_factory=TuneConfig)
    recommend: RecommendConfig = Field(default_factory=RecommendConfig)
    chat: ChatConfig = Field(default_factory=ChatConfig)
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    @model_validator(mode="after")
    def _privacy_scope(self) -> RunConfig:
        """DP-SGD where it is built: head on classify; full and lora on classify and multilabel."""
        if self.train.privacy is None:
            return self
        tasks = PRIVATE_METHODS.get(self.train.method, ())
        if self.task not in tasks:
            covered = ", ".join(f"{method} (task {' or '.join(names)})" for method, names in PRIVATE_METHODS.items())
            raise ValueError(
                f"train.privacy: differentially private training covers train.method {covered}; "
                f"got method {self.train.method} with task {self.task}"
            )
        return self

    @model_validator(mode="after")
    def _generator_default(self) -> RunConfig:
        """Causal pre-training starts from the packaged generator unless model.name names another causal LM."""
        if self.task == "lm" and self.pretrain.objective == "clm" and "name" not in self.model.model_fields_set:
            self.model.name = CLM_DEFAULT_MODEL
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def with_overrides(self, sections: dict[str, dict[str, Any]]) -> RunConfig:
        """A validated copy with some settings replaced: {"train": {"epochs": 2}, "data": {...}}."""
        raw = self.to_dict()
        for section, values in sections.items():
            raw[section] = {**raw[section], **values}
        return validate_config(raw)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, *, base: dict | None = None) -> RunConfig:
    """Read a YAML config (or start from `base`), apply `KEY=VALUE` overrides, validate."""
    raw: dict[str, Any] = dict(base or {})
    if path is not None:
        raw = _read_yaml(Path(path))
    for item in overrides or []:
        apply_override(raw, item)
    return validate_config(raw)


def validate_config(raw: dict[str, Any]) -> RunConfig:
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: {size:,} bytes; a config file is at most {MAX_CONFIG_BYTES:,} bytes")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise ConfigError(f"{path}: YAML nested too deeply") from None
    check_expansion(raw, str(path))
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections (data, model, train, ...)")
    _anchor_data_paths(raw, path.parent)
    return raw


def check_expansion(value: Any, where: str, limit: int = MAX_CONFIG_VALUES) -> None:
    """Refuse a document that expands to more than `limit` values once aliases are followed.

    PyYAML shares aliased objects, so loading a "billion laughs" file is cheap; walking
    it (validation, an error message, saving the config) is not. Counting stops at the limit.
    """
    count, stack = 0, [value]
    while stack:
        item = stack.pop()
        count += 1
        if count > limit:
            raise ConfigError(
                f"{where}: expands to over {limit:,} values (YAML aliases '*name' repeat anchored parts); a config is far smaller"
            )
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set)):
            stack.extend(item)


def _anchor_data_paths(raw: dict[str, Any], base_dir: Path) -> None:
    chat = raw.get("chat") if isinstance(raw.get("chat"), dict) else {}
    sections = [(raw.get("data"), DATA_PATH_KEYS), (chat, CHAT_PATH_KEYS), (chat.get("fine_tune"), ("data",))]
    for section, keys in sections:
        if not isinstance(section, dict):
            continue
        for key in keys:
            value = section.get(key)
            if isinstance(value, str) and value and ":" not in value.split("/")[0] and not Path(value).is_absolute():
                section[key] = str((base_dir / value).resolve())


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one `section.key=value` override; the value is parsed as YAML (2 -> int, [a,b] -> list)."""
    if "=" not in item:
        raise ConfigError(f"override {shorten(item)} must look like KEY=VALUE, e.g. train.epochs=2")
    key, _, text = item.partition("=")
    parts = [p for p in key.strip().split(".")]
    if not all(parts):
        raise ConfigError(f"override {shorten(item)}: bad key {shorten(key)}")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except (yaml.YAMLError, RecursionError):
        value = text
    check_expansion(value, f"override {shorten(item)}")
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {shorten(item)}: {'.'.join(parts[: i + 1])} is a value, not a section")
        node = child
    node[parts[-1]] = value


def load_section(model: type[SettingsT], section: str, overrides: list[str] | None = None) -> SettingsT:
    """Settings of one command (`serve`, `compress`) from `SECTION.KEY=VALUE` overrides, validated like the run config."""
    raw: dict[str, Any] = {}
    for item in overrides or []:
        key = item.split("=", 1)[0]
        if not key.startswith(f"{section}."):
            raise ConfigError(
                f"override {shorten(item)}: these settings start with '{section}.' (e.g. {section}.{next(iter(model.model_fields))}=...)"
            )
        apply_override(raw, item[len(section) + 1 :])
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, root=model, prefix=f"{section}.")) from None


def format_validation_error(exc: ValidationError, *, root: type[BaseModel] | None = None, prefix: str = "") -> str:
    """One line per problem: the dotted setting, what is wrong, what is allowed."""
    lines = ["invalid config:"]
    for err in exc.errors():
        loc = prefix + ".".join(shorten(p, quote=False) for p in err["loc"])
        lines.append(f"  {loc or '(top level)'}: {_describe(err, root or RunConfig)}")
    return "\n".join(lines)


def _describe(err: dict[str, Any], root: type[BaseModel]) -> str:
    kind = err["type"]
    got = err.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(root, err["loc"][:-1])
        return f"unknown setting; allowed here: {', '.join(allowed)}"
    if kind == "missing":
        return "required setting is missing"
    if kind == "literal_error":
        return f"must be one of {err['ctx']['expected']}; got {shorten(got)}"
    return f"{err['msg']}; got {shorten(got)}"


def shorten(value: Any, *, quote: bool = True) -> str:
    """A bad value as error messages echo it: its first SHOWN_CHARS characters, and how long it was.

    A value may be huge (a pasted file, an expanded alias); the message names the setting, it need not repeat it all.
    """
    if isinstance(value, (dict, list, tuple)) and len(value) > SHOWN_CHARS:
        return f"a {type(value).__name__} of {len(value):,} items"
    text = repr(value) if quote else str(value)
    if len(text) <= SHOWN_CHARS:
        return text
    return f"{text[:SHOWN_CHARS]}... ({len(text):,} characters)"


def _allowed_keys(root: type[BaseModel], loc: tuple) -> list[str]:
    model = root
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        annotation = field.annotation
        candidates = [annotation, *typing.get_args(annotation)]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return []
        model = nested[0]
    return sorted(model.model_fields)


def dump_config(config: RunConfig) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
