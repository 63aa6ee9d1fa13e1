"""Micro-batching: coalesce concurrent requests into one forward pass.

A single worker thread owns the model. Callers (threads or the event loop)
submit texts and get a `concurrent.futures.Future`; the worker waits up to
`max_wait_ms` to fill a batch of `max_batch_size` texts, runs it, and hands
each caller its own rows. The queue is bounded in texts: when full, `submit`
raises `QueueFull` at once instead of letting latency grow without bound.
A cancelled (timed-out) request is skipped and its slot freed. The batch
function returns row-aligned outputs (an array or a list), or a tuple of them
whose first item is the task's scores.

One bad input must not fail its neighbours: when a batch raises, each request
in it is retried alone, so only the offending request gets the error. A
traceback is logged once per distinct error, then counted quietly.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

logger = logging.getLogger(__name__)


class QueueFull(Exception):
    """The batcher holds `max_queue` texts already; retry later."""


class BatcherClosed(Exception):
    """The batcher is shutting down and takes no new work."""


@dataclass
class BatchResult:
    probabilities: np.ndarray  # the task's row-aligned scores (probabilities, or spans for entities)
    queue_seconds: float
    inference_seconds: float
    batch_size: int
    extras: tuple = ()  # further row-aligned outputs of the batch function (e.g. truncation flags)


@dataclass
class _Request:
    texts: list[str]
    future: Future
    enqueued: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    def __init__(
        self,
        predict: Callable[[list[str]], np.ndarray],
        *,
        max_batch_size: int = 32,
        max_wait_ms: float = 5.0,
        max_queue: int = 256,
        on_batch: Callable[[int, float], None] | None = None,
        on_depth: Callable[[int], None] | None = None,
    ):
        self._predict = predict
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.max_queue = max_queue
        self._on_batch = on_batch
        self._on_depth = on_depth  # told every new depth (a gauge a scrape of another process can read)
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._pending = 0
        self._lock = threading.Lock()
        self._closed = False
        self._seen_errors: set[str] = set()
        self.failures = 0  # requests that raised, counted once each
        self._worker = threading.Thread(target=self._run, name="tuneforge-batcher", daemon=True)
        self._worker.start()

    @property
    def depth(self) -> int:
        """Texts waiting or running."""
        return self._pending

    def submit(self, texts: list[str]) -> Future:
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise BatcherClosed("shutting down")
            if self._pending + len(texts) > self.max_queue:
                raise QueueFull(f"queue holds {self._pending} texts (limit {self.max_queue})")
            self._pending += len(texts)
            if self._on_depth:
                self._on_depth(self._pending)
        self._queue.put(_Request(list(texts), future))
        return future

    def predict(self, texts: list[str], timeout: float | None = None):
        """Blocking convenience for library callers: same batching as the service."""
        return self.submit(texts).result(timeout=timeout).probabilities

    def close(self, timeout: float = 10.0) -> None:
        """Stop taking work, finish what is queued (up to `timeout`), stop the worker."""
        with self._lock:
            self._closed = True
        self._queue.put(None)
        self._worker.join(timeout)

    def _log_failure(self, exc: Exception) -> None:
        key = f"{type(exc).__name__}: {exc}"[:300]
        self.failures += 1
        if key in self._seen_errors:
            logger.warning("request failed again: %s (%d failures so far)", key, self.failures)
            return
        if len(self._seen_errors) < 1000:
            self._seen_errors.add(key)
        logger.error("request failed: %s", key, exc_info=exc)

    def _release(self, n: int) -> None:
        with self._lock:
            self._pending -= n
            if self._on_depth:
                self._on_depth(self._pending)

    def _collect(self, first: _Request) -> tuple[list[_Request], bool]:
        batch, size, stop = [first], len(first.texts), False
        deadline = time.perf_counter() + self.max_wait
        while size < self.max_batch_size:
            remaining = deadline - time.perf_counter()
            try:
                item = self._queue.get(timeout=max(remaining, 0)) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stop = True
                break
            batch.append(item)
            size += len(item.texts)
        return batch, stop

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            batch, stop = self._collect(first)
            live = []
            for request in batch:
                if request.future.set_running_or_notify_cancel():
                    live.append(request)
                else:
                    self._release(len(request.texts))  # timed out while queued: free its slot
            if live:
                self._run_batch(live)
        # drain whatever arrived before close(): those callers were promised an answer
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None and item.future.set_running_or_notify_cancel():
                self._run_batch([item])

    def _run_batch(self, batch: list[_Request]) -> None:
        texts = [t for request in batch for t in request.texts]
        started = time.perf_counter()
        try:
            outputs = self._predict(texts)
        except Exception as exc:  # the worker lives on; find out whose input it was
            if len(batch) > 1:
                for request in batch:  # alone, each request fails or succeeds on its own input
                    self._run_batch([request])
                return
            self._log_failure(exc)
            batch[0].future.set_exception(exc)
            self._release(len(batch[0].texts))
            return
        if not isinstance(outputs, tuple):
            outputs = (outputs,)
        inference = time.perf_counter() - started
        if self._on_batch:
            self._on_batch(len(texts), inference)
        offset = 0
        for request in batch:
            n = len(request.texts)
            rows = tuple(part[offset : offset + n] for part in outputs)
            request.future.set_result(BatchResult(rows[0], started - request.enqueued, inference, len(texts), rows[1:]))
            offset += n
            self._release(n)
