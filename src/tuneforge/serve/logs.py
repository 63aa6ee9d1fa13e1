"""Service logging that a flood cannot turn into a disk-filling or secret-leaking log.

- One identical warning or error passes per second; the repeats are counted and the
  count rides on the next one that passes (a failing accept loop or a client sending
  garbage would otherwise write thousands of lines a second).
- The access log shows paths without their query string: this API takes none, and a
  client that puts `?api_key=...` there must not see its key in the log.
"""

from __future__ import annotations

import logging
import threading
import time

SERVICE_LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "asyncio")


class RepeatFilter(logging.Filter):
    """Let the first of identical WARNING+ records through per `window` seconds; count the rest."""

    def __init__(self, window: float = 1.0, max_keys: int = 1000):
        super().__init__()
        self.window, self.max_keys = window, max_keys
        self._seen: dict[tuple, list] = {}  # key -> [quiet until, repeats suppressed]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        verdict = getattr(record, "_tuneforge_repeat", None)
        if verdict is not None:  # the same record reaching a second handler
            return verdict
        key = (record.name, record.levelno, record.getMessage()[:300])
        now = time.monotonic()
        with self._lock:
            entry = self._seen.get(key)
            if entry is not None and now < entry[0]:
                entry[1] += 1
                verdict = False
            else:
                if entry is not None and entry[1] and isinstance(record.msg, str):
                    since = now - entry[0] + self.window
                    record.msg = f"{record.msg} [repeated {entry[1]} more times in the last {since:.1f} s, not logged]"
                if len(self._seen) >= self.max_keys:
                    self._seen = {k: v for k, v in self._seen.items() if now < v[0]}
                self._seen[key] = [now + self.window, 0]
                verdict = True
        record._tuneforge_repeat = verdict
        return verdict


class HideQueryString(logging.Filter):
    """uvicorn's access record is (client, method, path?query, http version, status): drop the query."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (args[0], args[1], args[2].split("?", 1)[0] + "?[query not logged]", *args[3:])
        return True


def install(repeat_window: float = 1.0) -> RepeatFilter:
    """Add both filters to the service's loggers and handlers (after uvicorn configured its logging)."""
    repeats = RepeatFilter(repeat_window)
    for name in SERVICE_LOGGERS:
        log = logging.getLogger(name)
        for handler in log.handlers:
            if not any(isinstance(f, RepeatFilter) for f in handler.filters):
                handler.addFilter(repeats)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, HideQueryString) for f in access.filters):
        access.addFilter(HideQueryString())
    return repeats
