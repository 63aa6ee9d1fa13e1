"""Connections that cannot starve the service: a read deadline and a cap on open connections.

uvicorn's h11 protocol closes an idle keep-alive connection after `timeout_keep_alive`,
but waits forever for the first request on a fresh connection and for headers or a
body that trickle in a byte at a time. Held open by the thousand, such connections
use up file descriptors until nobody else can connect. So:

- a request must arrive whole (headers and body) within `serve.read_timeout_s` of
  its first byte, or of the connection opening; otherwise the connection is closed;
- at most `serve.max_connections` stay open: a new one first makes room by closing
  the longest-idle connection (no request in progress), and when every connection
  is busy its request is answered 503 (JSON, `Retry-After: 1`) and the connection closed;
  past a quarter more than the cap, a new connection is closed at once, unanswered.

File descriptors stay below the process limit: asyncio accepts up to `backlog`
connections per wake-up, before any can be closed, so the peak is about the hard
ceiling plus twice the backlog; the defaults keep that under the open-file limit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import resource

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger(__name__)
FD_RESERVE = 64  # descriptors kept for model files, logs and the listening socket
MAX_BACKLOG = 128


def default_max_connections() -> int:
    """1000, or half the descriptors the process may open beyond FD_RESERVE."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1000
    return max(1, min(1000, (soft - FD_RESERVE) // 2))


def accept_backlog(max_connections: int) -> int:
    """The listen backlog, which is also how many connections asyncio accepts per wake-up."""
    return max(8, min(MAX_BACKLOG, max_connections // 4))


def hard_ceiling(max_connections: int) -> int:
    """Open connections past which a new one is closed at once instead of waiting to be told 503."""
    return max_connections + max_connections // 4 + 8


def check_file_limit(max_connections: int) -> str | None:
    """A warning when `max_connections` could need more descriptors than the process may open."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = hard_ceiling(max_connections) + 2 * accept_backlog(max_connections) + FD_RESERVE
    if soft != resource.RLIM_INFINITY and need > soft:
        return (
            f"serve.max_connections={max_connections} can need about {need} file descriptors but the limit is {soft} "
            f"(ulimit -n); raise the limit or lower serve.max_connections to {default_max_connections()}"
        )
    return None


def guarded_protocol(*, max_connections: int, read_timeout_s: float) -> type[H11Protocol]:
    """The uvicorn `http` protocol class with these limits."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"max_connections": max_connections, "read_timeout_s": read_timeout_s})


class GuardedH11Protocol(H11Protocol):
    max_connections = 1000
    read_timeout_s = 10.0
    busy_read_timeout_s = 1.0  # a connection over the cap gets this long to send the request it will be refused

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._inner_app = self.app
        self.app = self._admit
        self._deadline = None
        self.last_active = 0.0

    # -- lifecycle -----------------------------------------------------------------------

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.last_active = self.loop.time()
        over = self.over_capacity() and not _make_room(self)
        if over and len(self.connections) > hard_ceiling(self.max_connections):
            self.close_idle()  # a flood while every connection is busy: no descriptor to spare for an answer
            return
        self._arm(self.busy_read_timeout_s if over else self.read_timeout_s)

    def data_received(self, data: bytes) -> None:
        self.last_active = self.loop.time()
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
            if self._deadline is None:  # first bytes of the next request on a kept-alive connection
                self._arm(self.read_timeout_s)
        else:  # the request is read whole; the app (and serve.request_timeout_s) takes over
            self._disarm()

    def on_response_complete(self) -> None:
        self.last_active = self.loop.time()
        super().on_response_complete()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    # -- the read deadline ---------------------------------------------------------------

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._read_timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _read_timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
            return
        logger.debug("closing a connection that did not send a whole request in time")
        self.transport.close()

    # -- the cap ---------------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        """No request in the app: waiting for (or part-way through the headers of) the next one."""
        return (self.cycle is None or self.cycle.response_complete) and self.conn.their_state is h11.IDLE

    def close_idle(self) -> None:
        with contextlib.suppress(h11.LocalProtocolError):
            self.conn.send(h11.ConnectionClosed())
        self.transport.close()

    def over_capacity(self) -> bool:
        """More open connections than allowed, not counting those already closing (room being made)."""
        if len(self.connections) <= self.max_connections:
            return False
        return sum(1 for c in self.connections if not c.transport.is_closing()) > self.max_connections

    async def _admit(self, scope, receive, send) -> None:
        if self.over_capacity() and not _make_room(self):
            await _refuse(send, self.max_connections)
            return
        await self._inner_app(scope, receive, send)


def _make_room(newcomer: GuardedH11Protocol) -> bool:
    """Close the longest-idle other connection; False when every other one is busy."""
    idle = [
        c
        for c in newcomer.connections
        if c is not newcomer and isinstance(c, GuardedH11Protocol) and c.idle and not c.transport.is_closing()
    ]
    if not idle:
        return False
    min(idle, key=lambda c: c.last_active).close_idle()
    return True


async def _refuse(send, limit: int) -> None:
    message = f"too many open connections (serve.max_connections={limit}); retry shortly"
    body = json.dumps({"error": message, "error_type": "too_many_connections"}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"1"),
        (b"x-error-type", b"too_many_connections"),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})
