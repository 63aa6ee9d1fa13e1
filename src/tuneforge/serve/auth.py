"""Optional API keys: `Authorization: Bearer <key>`, compared in constant time, never logged.

Keys come from `TUNEFORGE_API_KEYS` (comma-separated) and/or a file with one key
per line, either plain or as `sha256:<hex digest>` so the file need not hold secrets.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from tuneforge.errors import ConfigError

ENV_VAR = "TUNEFORGE_API_KEYS"


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def load_key_digests(keys_file: str | None = None, *, environ: dict | None = None) -> list[bytes]:
    env = os.environ if environ is None else environ
    digests = [_digest(k.strip()) for k in env.get(ENV_VAR, "").split(",") if k.strip()]
    if keys_file:
        path = Path(keys_file)
        if not path.is_file():
            raise ConfigError(f"serve.api_keys_file: {path} not found")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("sha256:"):
                try:
                    digest = bytes.fromhex(line[len("sha256:") :])
                except ValueError:
                    digest = b""
                if len(digest) != 32:
                    raise ConfigError(f"{path}:{number}: 'sha256:' must be followed by 64 hex digits")
                digests.append(digest)
            else:
                digests.append(_digest(line))
    return digests


def is_authorized(header: str | None, digests: list[bytes]) -> bool:
    """True when no keys are configured, or the bearer token matches one (constant time)."""
    if not digests:
        return True
    if not header or not header.startswith("Bearer "):
        return False
    presented = _digest(header[len("Bearer ") :].strip())
    match = False
    for digest in digests:  # check every key: timing does not reveal which one matched
        match |= hmac.compare_digest(presented, digest)
    return match
