"""A bounded-memory shuffle for streamed rows: hold `size` items, hand out a random one as each new item arrives.

The same scheme as `tf.data.Dataset.shuffle` and Hugging Face `datasets`'
`IterableDataset.shuffle(buffer_size=...)`: memory is `size` items whatever
the stream's length; a row moves at most about `size` places from its file
neighbours' positions on average, so a bigger buffer is closer to a full shuffle.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

import numpy as np

T = TypeVar("T")


class ShuffleBuffer:
    """`shuffle(items, rng)` yields every item once, in an order drawn from `rng`; `peak` is the most items it held."""

    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f"shuffle buffer size must be at least 1, got {size}")
        self.size = size
        self.peak = 0

    def shuffle(self, items: Iterable[T], rng: np.random.Generator) -> Iterator[T]:
        buffer: list[T] = []
        draws: list[int] = []
        for item in items:
            if len(buffer) < self.size:
                buffer.append(item)
                self.peak = max(self.peak, len(buffer))
                continue
            if not draws:  # random slots drawn in blocks: one numpy call per item would dominate the cost
                draws = rng.integers(self.size, size=4096).tolist()
            j = draws.pop()
            out, buffer[j] = buffer[j], item
            yield out
        order = rng.permutation(len(buffer))
        for j in order:
            yield buffer[j]
