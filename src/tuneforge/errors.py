"""The project's error hierarchy.

User-facing problems (bad config, bad data, missing run) derive from
`TuneforgeError` and are reported by the CLI with exit code 2; they also
subclass the built-in type a caller would naturally catch.
"""

from __future__ import annotations


class TuneforgeError(Exception):
    """Base class for every error tuneforge raises on purpose."""


class ConfigError(TuneforgeError, ValueError):
    """A setting is unknown, missing or has a bad value."""


class DataError(TuneforgeError, ValueError):
    """A data file is missing, unreadable or does not fit the config."""


class RunError(TuneforgeError, FileNotFoundError):
    """A run directory is missing, incomplete or not of the expected kind."""


class MissingDependencyError(TuneforgeError, ImportError):
    """An optional dependency is not installed; the message names the extra."""


class ResourceError(TuneforgeError, OSError):
    """The machine refused: disk full, directory not writable. Not the user's input, so exit code 1."""

    exit_code = 1


class RunStopped(TuneforgeError):
    """A run stopped on purpose before it finished (e.g. a tuning trial pruned); `status` goes into run.json."""

    status = "stopped"
