"""Bounded generation for the chat route: a few at a time, a short waiting line, and a way to stop each one.

Generation is CPU-bound and long (seconds), so it is not micro-batched like scoring:
at most `serve.max_generations` run at once per model, `serve.max_waiting_generations`
more may wait for a slot, and past that a request is answered 429 at once. Each runs
the model's synchronous `stream()` in its own thread and hands the pieces to the event
loop; whoever stops listening (a client that disconnects, a timeout, shutdown) sets the
generation's stop event, which ends `generate` after its current token.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator


class GenerationsFull(Exception):
    """Every slot is taken and the waiting line is full."""


class GenerationSlots:
    def __init__(self, max_active: int, max_waiting: int):
        self.max_active, self.max_waiting = max_active, max_waiting
        self.active = 0
        self.waiting = 0
        self._condition: asyncio.Condition | None = None  # made in the event loop on first use

    @property
    def condition(self) -> asyncio.Condition:
        if self._condition is None:
            self._condition = asyncio.Condition()
        return self._condition

    async def acquire(self) -> None:
        async with self.condition:
            if self.active >= self.max_active and self.waiting >= self.max_waiting:
                raise GenerationsFull(f"{self.active} generations running and {self.waiting} waiting (serve.max_waiting_generations)")
            self.waiting += 1
            try:
                await self.condition.wait_for(lambda: self.active < self.max_active)
            finally:
                self.waiting -= 1
            self.active += 1

    async def release(self) -> None:
        async with self.condition:
            self.active -= 1
            self.condition.notify_all()

    async def wait_idle(self, timeout: float) -> bool:
        """True when no generation runs or waits (within `timeout` seconds): the drain on shutdown."""
        async with self.condition:
            try:
                await asyncio.wait_for(self.condition.wait_for(lambda: self.active == 0 and self.waiting == 0), timeout)
            except asyncio.TimeoutError:
                return False
        return True


async def stream_in_thread(start: Callable[[threading.Event], Iterator], stop: threading.Event) -> AsyncIterator:
    """Items of the synchronous iterator `start(stop)`, produced in a worker thread, as an async iterator.

    Leaving early (an exception, cancellation, `aclose`) sets `stop`, so the worker ends too.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    done = object()

    def put(kind, value) -> None:
        if stop.is_set() and kind == "item":
            return  # nobody listens any more: let the generation wind down
        with contextlib.suppress(RuntimeError):  # the event loop has closed (shutdown): nothing to hand the item to
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

    def work() -> None:
        try:
            for item in start(stop):
                put("item", item)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the event loop's side
            put("error", exc)
        finally:
            put("end", done)

    thread = threading.Thread(target=work, name="tuneforge-chat", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = await queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
