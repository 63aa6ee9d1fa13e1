"""The GPU table of `tuneforge plan`: types, memory, peak throughput and price, in a YAML file the user can edit.

The bundled `gpus.yaml` holds example figures; a user's own table replaces it
whole (`--gpus FILE`, else `~/.config/tuneforge/gpus.yaml`), so prices match
what that user pays and only the GPUs they can rent are listed.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from tuneforge.errors import ConfigError

GPU_FIELDS = {"name": str, "memory_gb": float, "tflops": float, "usd_per_hour": float}
ASSUMPTIONS = {"efficiency": 0.3, "train_step_overhead_ms": 10.0, "forward_overhead_ms": 3.0, "reserved_gb": 1.0}


@dataclass(frozen=True)
class Gpu:
    name: str
    memory_gb: float
    tflops: float  # dense bf16/fp16 tensor peak
    usd_per_hour: float


@dataclass(frozen=True)
class GpuTable:
    source: str
    gpus: list[Gpu]
    efficiency: float
    train_step_overhead_ms: float
    forward_overhead_ms: float
    reserved_gb: float

    def assumptions(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k in ASSUMPTIONS}


def user_table_path() -> Path:
    """`$XDG_CONFIG_HOME/tuneforge/gpus.yaml`, else `~/.config/tuneforge/gpus.yaml`."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "tuneforge" / "gpus.yaml"


def bundled_table_path() -> Path:
    return Path(str(resources.files("tuneforge.plan") / "gpus.yaml"))


def load_gpu_table(path: str | Path | None = None) -> GpuTable:
    """`path` (the `--gpus` option), else the user's table if it exists, else the bundled one."""
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"--gpus: {path} is not a file")
    else:
        path = user_table_path() if user_table_path().is_file() else bundled_table_path()
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a valid YAML file: {exc}") from None
    return parse_gpu_table(raw, source=str(path))


def parse_gpu_table(raw, *, source: str) -> GpuTable:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping with 'gpus' (a list) and optionally 'assumptions'")
    unknown = set(raw) - {"assumptions", "gpus"}
    if unknown:
        raise ConfigError(f"{source}: unknown key {', '.join(sorted(map(str, unknown)))} (expected 'assumptions' and 'gpus')")
    assumptions = {**ASSUMPTIONS, **_assumptions(raw.get("assumptions") or {}, source)}
    entries = raw.get("gpus")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{source}: 'gpus' must list at least one GPU type")
    gpus = [_gpu(entry, i, source) for i, entry in enumerate(entries, start=1)]
    names = [g.name for g in gpus]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"{source}: GPU name {', '.join(twice)} listed more than once")
    return GpuTable(source=source, gpus=gpus, **assumptions)


def _assumptions(raw, source: str) -> dict:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: assumptions must be a mapping")
    unknown = set(raw) - set(ASSUMPTIONS)
    if unknown:
        raise ConfigError(f"{source}: assumptions: unknown field {', '.join(sorted(unknown))} (known: {', '.join(ASSUMPTIONS)})")
    out = {key: _number(value, f"{source}: assumptions {key}") for key, value in raw.items()}
    if "efficiency" in out and not 0 < out["efficiency"] <= 1:
        raise ConfigError(f"{source}: assumptions efficiency must be in (0, 1], got {out['efficiency']}")
    return out


def _gpu(entry, index: int, source: str) -> Gpu:
    where = f"{source}: gpus entry {index}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a mapping of name, memory_gb, tflops, usd_per_hour")
    if isinstance(entry.get("name"), str):
        where += f" ({entry['name']!r})"
    missing = [k for k in GPU_FIELDS if k not in entry]
    unknown = set(entry) - set(GPU_FIELDS)
    if missing or unknown:
        problems = ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unknown {', '.join(sorted(unknown))}"] if unknown else [])
        raise ConfigError(f"{where}: {'; '.join(problems)} (fields: {', '.join(GPU_FIELDS)})")
    if not isinstance(entry["name"], str) or not entry["name"].strip():
        raise ConfigError(f"{where}: name must be a non-empty string")
    values = {k: _number(entry[k], f"{where}: {k}") for k in ("memory_gb", "tflops", "usd_per_hour")}
    for key in ("memory_gb", "tflops"):
        if values[key] <= 0:
            raise ConfigError(f"{where}: {key} must be above 0, got {values[key]}")
    return Gpu(name=entry["name"], **values)


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{where} must be a number of at least 0, got {value!r}")
    return float(value)
