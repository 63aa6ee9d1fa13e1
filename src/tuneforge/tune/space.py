"""Turn `tune.space` into Optuna suggestions and check every key is a real setting."""

from __future__ import annotations

import copy
import json
from typing import Any

from tuneforge.config import ParamSpace, RunConfig, apply_override, validate_config
from tuneforge.errors import ConfigError


def suggest(trial, name: str, spec: ParamSpace) -> Any:
    if spec.choices is not None:
        return trial.suggest_categorical(name, spec.choices)
    if spec.is_int:
        return trial.suggest_int(name, int(spec.low), int(spec.high), step=int(spec.step or 1))
    return trial.suggest_float(name, spec.low, spec.high, log=spec.log, step=spec.step)


def grid(spec: ParamSpace, name: str) -> list[Any]:
    """The values a grid search tries for one setting."""
    if spec.choices is not None:
        return list(spec.choices)
    if spec.step is None:
        raise ConfigError(f"tune.space.{name}: the grid sampler needs 'choices' or a 'step' for a range")
    values, v = [], spec.low
    while v <= spec.high + 1e-12:
        values.append(int(v) if spec.is_int else round(v, 12))
        v += spec.step
    return values


def apply_params(config: RunConfig, params: dict[str, Any]) -> RunConfig:
    """The run config of one trial: the base config with the trial's values set."""
    raw = config.to_dict()
    for key, value in params.items():
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = copy.deepcopy(value)
    return validate_config(raw)


def check_space(config: RunConfig) -> None:
    """Every key names a real setting and every value in its range is accepted by the config."""
    if not config.tune.space:
        raise ConfigError(
            "tune.space is empty: name at least one setting to search, e.g. train.learning_rate: {low: 1.0e-5, high: 1.0e-3, log: true}"
        )
    for name, spec in config.tune.space.items():
        if name.startswith("tune.") or name.startswith("output."):
            raise ConfigError(f"tune.space.{name}: tune.* and output.* settings cannot be searched")
        probes = spec.choices if spec.choices is not None else [spec.low, spec.high]
        for value in probes:
            raw = config.to_dict()
            try:
                apply_override(raw, f"{name}={json.dumps(int(value) if spec.is_int else value)}")
                validate_config(raw)
            except ConfigError as exc:
                detail = str(exc).replace("invalid config:\n  ", "")
                raise ConfigError(f"tune.space.{name}: value {value!r} is not accepted: {detail}") from None
