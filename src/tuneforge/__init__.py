"""tuneforge: from a labeled dataset to a served, measured model on the hardware you have."""

from __future__ import annotations

from tuneforge.errors import ConfigError, DataError, MissingDependencyError, RunError, TuneforgeError

__version__ = "0.1.0"

__all__ = [
    "ChatBot",
    "ConfigError",
    "DataError",
    "MissingDependencyError",
    "Predictor",
    "RunError",
    "TuneforgeError",
    "__version__",
    "load_config",
    "train",
]


def __getattr__(name: str):
    # Lazy: `import tuneforge` must stay cheap (no torch import) for the CLI's --help.
    if name == "ChatBot":
        from tuneforge.tasks.chat.runtime import ChatBot

        return ChatBot
    if name == "Predictor":
        from tuneforge.predict.predictor import Predictor

        return Predictor
    if name == "load_config":
        from tuneforge.config import load_config

        return load_config
    if name == "train":
        from tuneforge.engine.run import train

        return train
    raise AttributeError(f"module 'tuneforge' has no attribute {name!r}")
