"""Optional API keys: `Authorization: Bearer <key>`, compared in constant time, never logged.

Keys come from `TUNEFORGE_API_KEYS` (comma-separated) and/or a file with one key
per line, either plain or as `sha256:<hex digest>` so the file need not hold secrets.

A key source that is given but holds no key is a mistake (an unfilled secret), not a
wish to run open, so it stops the start. Serving beyond loopback without keys takes
an explicit `--no-auth`.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
from pathlib import Path

from tuneforge.errors import ConfigError

ENV_VAR = "TUNEFORGE_API_KEYS"
logger = logging.getLogger(__name__)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def load_key_digests(keys_file: str | None = None, *, environ: dict | None = None) -> list[bytes]:
    env = os.environ if environ is None else environ
    digests = [_digest(k.strip()) for k in env.get(ENV_VAR, "").split(",") if k.strip()]
    if ENV_VAR in env and not digests:
        raise ConfigError(f"{ENV_VAR} is set but holds no key (only blanks and commas); give comma-separated keys, or unset it")
    if keys_file:
        from_env = len(digests)
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
        if len(digests) == from_env:
            raise ConfigError(f"serve.api_keys_file: {path} holds no key (only blank lines or comments)")
    return digests


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def check_exposure(host: str, digests: list[bytes], no_auth: bool) -> None:
    """Refuse to serve beyond loopback without keys unless `--no-auth` says so (then warn)."""
    if no_auth and digests:
        raise ConfigError(f"--no-auth was given but API keys are configured ({ENV_VAR} or serve.api_keys_file); drop one or the other")
    if not digests and not no_auth and not is_loopback(host):
        raise ConfigError(
            f"serving on {host} without API keys would let anyone on the network use it: set {ENV_VAR} or "
            "serve.api_keys_file, or pass --no-auth if that is what you want"
        )
    if no_auth:
        logger.warning("--no-auth: serving on %s without API keys; anyone who can reach it can use it", host)


def is_authorized(header: str | None, digests: list[bytes]) -> bool:
    """True when no keys are configured, or the bearer token matches one (constant time)."""
    if not digests:
        return True
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():  # auth schemes are case-insensitive (RFC 7235)
        return False
    presented = _digest(token.strip())
    match = False
    for digest in digests:  # check every key: timing does not reveal which one matched
        match |= hmac.compare_digest(presented, digest)
    return match
