"""Rows as 64-bit keyed hashes: dedup without holding texts, and split membership as a function of the hash.

The hash is the data-lineage hash (HMAC-SHA256 with this user's key, first 8
bytes), so one number per row serves dedup, the split and `lineage.json`. Two
different texts share a hash with probability about n² / 2^65 (1M rows:
~3e-8). `SeenTexts` stores 10 bytes per distinct text (the hash and a label
code) in sorted numpy runs merged like a log-structured tree: 1M distinct
texts take ~10 MB, where a Python set of ints would take ~60 MB.
"""

from __future__ import annotations

import hashlib
import hmac
import os

import numpy as np

from tuneforge.cache import cache_dir

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def text_hashes(texts: list[str], key: bytes) -> np.ndarray:
    """The keyed hash of every text as uint64 (the same value `lineage.row_hashes` writes as 16 hex digits)."""
    digest = lambda t: int.from_bytes(hmac.new(key, t.encode("utf-8"), hashlib.sha256).digest()[:8], "big")  # noqa: E731
    return np.fromiter((digest(t) for t in texts), dtype=np.uint64, count=len(texts))


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit moves every output bit."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def unit_interval(hashes: np.ndarray, seed: int) -> np.ndarray:
    """A number in [0, 1) per row, a pure function of (seed, row hash): the same text always lands in the same place."""
    salt = _mix(np.array([(seed * _GOLDEN + _GOLDEN) & _MASK], dtype=np.uint64))[0]
    return (_mix(hashes ^ salt) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def assign_splits(hashes: np.ndarray, seed: int, *, test: float, validation: float) -> np.ndarray:
    """0 train, 1 validation, 2 test per row: test takes [0, test), validation [test, test + validation).

    Each row is an independent draw, so every label's share of each split is exact in
    expectation; a label with n rows deviates by about sqrt(n * f * (1 - f)) rows
    (n = 10,000 at f = 0.1: ±30 rows, 0.3 % of n)."""
    u = unit_interval(hashes, seed)
    out = np.zeros(len(hashes), dtype=np.int8)
    out[u < test + validation] = 1
    out[u < test] = 2
    return out


class SeenTexts:
    """Which text hashes were seen, and under which label code: sorted runs, merged when two reach the same size."""

    def __init__(self) -> None:
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []  # (sorted hashes, their label codes), largest first

    def __len__(self) -> int:
        return sum(len(h) for h, _ in self._runs)

    @property
    def nbytes(self) -> int:
        return sum(h.nbytes + c.nbytes for h, c in self._runs)

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        """The label code stored for each hash, -1 where unseen."""
        out = np.full(len(hashes), -1, dtype=np.int32)
        for keys, codes in self._runs:
            if not len(keys):
                continue
            at = np.minimum(np.searchsorted(keys, hashes), len(keys) - 1)
            hit = keys[at] == hashes
            out[hit] = codes[at[hit]]
        return out

    def add(self, hashes: np.ndarray, codes: np.ndarray) -> None:
        """Add hashes not yet present (the caller looked them up first)."""
        if not len(hashes):
            return
        order = np.argsort(hashes, kind="stable")
        run = (hashes[order], codes[order].astype(np.int16))
        while self._runs and len(self._runs[-1][0]) <= len(run[0]):
            keys, codes_ = self._runs.pop()
            merged = np.concatenate([keys, run[0]])
            order = np.argsort(merged, kind="stable")
            run = (merged[order], np.concatenate([codes_, run[1]])[order])
        self._runs.append(run)


def first_in_chunk(hashes: np.ndarray) -> np.ndarray:
    """True at the first occurrence of each hash within the chunk (file order)."""
    _, first = np.unique(hashes, return_index=True)
    mask = np.zeros(len(hashes), dtype=bool)
    mask[first] = True
    return mask


def lineage_key() -> bytes:
    """This user's lineage key (32 random bytes), made on first use."""
    path = cache_dir() / "lineage.key"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # another process may race us: only one writes
        try:
            os.write(fd, os.urandom(32))
        finally:
            os.close(fd)
    return path.read_bytes()
