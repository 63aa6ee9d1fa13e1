"""Word-level text augmentation (EDA: insert, replace, delete, swap) for the training split only.

Each training text gets `copies` edited copies, one operation each, drawn at random.
Replacement and insertion take a word's nearest neighbours in an encoder's
input-embedding space (`NeighbourTable`), so no thesaurus or downloaded word list
is needed. A copy depends only on the seed and its own text (not on the other rows),
so a retrain without some rows (`tuneforge forget`) keeps every other row's copies.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

OPERATIONS = ("insert", "replace", "delete", "swap")
MIN_WORD = 3  # shorter words (a, of, to, is) are not replaced or used as insertion sources
_WORD = re.compile(r"^(\W*)([^\W\d_]+)(\W*)$")  # leading punctuation, letters, trailing punctuation
_BATCH = 1024  # query words per similarity product (1024 x 30k floats: ~120 MB at most)


@dataclass
class NeighbourTable:
    """Nearest whole words by cosine similarity of their embedding rows; looked up lazily and cached per word."""

    words: list[str]
    vectors: np.ndarray  # one row per word, any scale (normalised here)
    k: int = 5
    _index: dict[str, int] = field(init=False, repr=False)
    _unit: np.ndarray = field(init=False, repr=False)
    _cache: dict[str, tuple[str, ...]] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.words) != len(self.vectors):
            raise ValueError(f"{len(self.words)} words but {len(self.vectors)} vectors")
        self._index = {w: i for i, w in enumerate(self.words)}
        vectors = np.asarray(self.vectors, dtype=np.float32)
        self._unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def key(self, word: str) -> str | None:
        """The vocabulary entry for `word` (exact, else lower-cased), or None when it has none."""
        if word in self._index:
            return word
        lower = word.lower()
        return lower if lower in self._index else None

    def prepare(self, words: Iterable[str]) -> None:
        """Compute the neighbours of every vocabulary word among `words` in a few matrix products."""
        todo = sorted({k for w in words if (k := self.key(w)) is not None and k not in self._cache})
        for start in range(0, len(todo), _BATCH):
            batch = todo[start : start + _BATCH]
            rows = np.array([self._index[w] for w in batch])
            sims = self._unit[rows] @ self._unit.T
            sims[np.arange(len(batch)), rows] = -np.inf  # never a word's own neighbour
            take = min(self.k + 1, sims.shape[1] - 1)
            top = np.argpartition(-sims, take - 1, axis=1)[:, :take] if take > 0 else np.zeros((len(batch), 0), int)
            for word, row, candidates in zip(batch, sims, top):
                ordered = candidates[np.argsort(-row[candidates], kind="stable")]
                near = [self.words[j] for j in ordered if self.words[j].lower() != word.lower()]
                self._cache[word] = tuple(near[: self.k])

    def neighbours(self, word: str) -> tuple[str, ...]:
        key = self.key(word)
        if key is None:
            return ()
        if key not in self._cache:
            self.prepare([key])
        return self._cache[key]


def _match_case(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    return word[:1].upper() + word[1:] if like[:1].isupper() else word


def _core(token: str) -> tuple[str, str, str] | None:
    """(prefix, word, suffix) of a whitespace token that is letters wrapped in punctuation, else None."""
    m = _WORD.match(token)
    return (m.group(1), m.group(2), m.group(3)) if m else None


def _changes(n_words: int, probability: float) -> int:
    return max(1, int(round(probability * n_words)))


def _sources(tokens: Sequence[str], table: NeighbourTable) -> list[int]:
    """Positions whose word has neighbours: what replace edits and insert draws from."""
    out = []
    for i, token in enumerate(tokens):
        parts = _core(token)
        if parts and len(parts[1]) >= MIN_WORD and table.neighbours(parts[1]):
            out.append(i)
    return out


def delete(tokens: list[str], probability: float, rng: np.random.Generator) -> list[str]:
    """Drop each word with `probability`; one word always stays."""
    kept = [t for t, r in zip(tokens, rng.random(len(tokens))) if r >= probability]
    return kept or [tokens[int(rng.integers(len(tokens)))]]


def swap(tokens: list[str], probability: float, rng: np.random.Generator) -> list[str]:
    """Swap two random words, round(probability x words) times (at least once)."""
    out = list(tokens)
    if len(out) < 2:
        return out
    for _ in range(_changes(len(out), probability)):
        i, j = rng.choice(len(out), size=2, replace=False)
        out[i], out[j] = out[j], out[i]
    return out


def replace(tokens: list[str], probability: float, rng: np.random.Generator, table: NeighbourTable) -> list[str]:
    """Replace round(probability x words) distinct words by one of their nearest neighbours, keeping case and punctuation."""
    out = list(tokens)
    sources = _sources(out, table)
    for i in rng.permutation(sources)[: _changes(len(out), probability)]:
        prefix, word, suffix = _core(out[i])
        near = table.neighbours(word)
        out[i] = prefix + _match_case(near[int(rng.integers(len(near)))], word) + suffix
    return out


def insert(tokens: list[str], probability: float, rng: np.random.Generator, table: NeighbourTable) -> list[str]:
    """Insert a neighbour of a random word of the text at a random place, round(probability x words) times."""
    out = list(tokens)
    sources = [_core(out[i])[1] for i in _sources(out, table)]
    if not sources:
        return out
    for _ in range(_changes(len(tokens), probability)):
        near = table.neighbours(sources[int(rng.integers(len(sources)))])
        out.insert(int(rng.integers(len(out) + 1)), near[int(rng.integers(len(near)))])
    return out


def words(texts: Iterable[str]) -> set[str]:
    """The distinct letter-only words of `texts` (punctuation stripped): what a neighbour table is asked about."""
    return {parts[1] for text in texts for token in text.split() if (parts := _core(token)) and len(parts[1]) >= MIN_WORD}


def text_rng(seed: int, text: str) -> np.random.Generator:
    """A generator that depends only on the seed and the text (not on row order or the other rows)."""
    digest = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng([seed, digest])


def augment_text(
    text: str, *, operations: Sequence[str], probability: float, copies: int, seed: int, table: NeighbourTable | None
) -> list[tuple[str, str]]:
    """Up to `copies` (operation, edited text) pairs for `text`; copies equal to the text or to each other are left out."""
    tokens = text.split()
    if not tokens:
        return []
    rng = text_rng(seed, text)
    out, seen = [], {text}
    for _ in range(copies):
        op = operations[int(rng.integers(len(operations)))]
        if op in ("insert", "replace"):
            edited = (insert if op == "insert" else replace)(tokens, probability, rng, table)
        else:
            edited = (delete if op == "delete" else swap)(tokens, probability, rng)
        new = " ".join(edited)
        if new not in seen:
            seen.add(new)
            out.append((op, new))
    return out


def augment_frame(
    frame: pd.DataFrame,
    *,
    operations: Sequence[str],
    probability: float,
    copies: int,
    seed: int,
    table: NeighbourTable | None = None,
) -> tuple[pd.DataFrame, dict]:
    """The added rows (every column of their original row, the text edited) and counts per operation."""
    unknown = [op for op in operations if op not in OPERATIONS]
    if unknown:
        raise ValueError(f"unknown augmentation operation(s) {unknown}; known: {', '.join(OPERATIONS)}")
    if table is None and {"insert", "replace"} & set(operations):
        raise ValueError("insert and replace need a NeighbourTable")
    if table is not None:
        table.prepare(words(frame["text"]))
    rows, counts = [], Counter()
    for record in frame.to_dict(orient="records"):
        for op, text in augment_text(record["text"], operations=operations, probability=probability, copies=copies, seed=seed, table=table):
            rows.append({**record, "text": text})
            counts[op] += 1
    added = pd.DataFrame.from_records(rows, columns=frame.columns) if rows else frame.iloc[0:0].copy()
    return added.reset_index(drop=True), {op: counts.get(op, 0) for op in operations}
