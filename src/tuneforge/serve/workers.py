"""`serve --workers N`: N processes on one port, each with its own models (shared nothing).

The parent checks the runs and keys, binds the port and starts N spawned workers, each
running the same draining uvicorn server (`serve/server.py`) on it; the kernel hands each
new connection to one of them (on Linux each worker listens on its own SO_REUSEPORT socket,
which spreads connections evenly; elsewhere they share the parent's socket).
uvicorn's own multi-process supervisor
is not used: it runs a plain `uvicorn.Server` in each worker, which neither marks the
service draining on SIGTERM nor exits 0 after draining.

- SIGTERM (or SIGINT) to the parent goes on to every worker as SIGTERM; each turns
  `/readyz` 503, drains its in-flight requests within `serve.drain_seconds` and exits 0;
  then the parent exits 0 (a worker still running well past that is killed, exit 1).
- A worker that dies is logged with its exit code and replaced. One that fails at
  startup (exit 3: a model that will not load, a port taken) stops the service, since a
  replacement would fail the same way; so do 5 deaths within a minute.
- Metrics: the parent makes a private PROMETHEUS_MULTIPROC_DIR before any worker starts
  (prometheus_client reads it at import), marks each dead worker's gauges dead, and
  removes the directory at exit. Any worker's `/metrics` merges all of them.
- Unless `serve.threads` is set, each worker computes with its share of the CPUs.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import deque

from tuneforge.errors import ConfigError, TuneforgeError
from tuneforge.serve.connections import check_file_limit
from tuneforge.serve.logs import install as install_log_filters
from tuneforge.serve.metrics import MULTIPROC_ENV
from tuneforge.serve.settings import ServeSettings

logger = logging.getLogger("uvicorn.error")  # the parent's lines sit with uvicorn's, in its format
STARTUP_FAILURE = 3  # uvicorn's exit code for a server that never started
CRASH_WINDOW_S, MAX_CRASHES = 60.0, 5
# One shared listening socket lets whichever worker wakes first accept a whole burst of
# connections (asyncio accepts up to the backlog per wake-up): 16 kept-alive clients all
# landed on one worker. SO_REUSEPORT on Linux hashes each new connection to one worker's socket.
REUSE_PORT = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")
STOP_GRACE_S = 15.0  # beyond the drain: models unloading, the process ending


class WorkersFailed(TuneforgeError):
    """The workers could not be kept running (exit code 1: not the user's input)."""

    exit_code = 1


def worker_threads(settings: ServeSettings) -> int | None:
    """`serve.threads`, or the CPUs shared out between the workers so they do not oversubscribe the cores."""
    if settings.threads is not None:
        return settings.threads
    return max(1, (os.cpu_count() or 1) // settings.workers)


def serve_workers(model_specs: list[str], settings: ServeSettings, *, no_auth: bool = False) -> None:
    import uvicorn

    from tuneforge.serve.server import check_service

    check_service(model_specs, settings, no_auth=no_auth)
    if problem := check_file_limit(settings.max_connections):
        logger.warning(problem)
    settings = settings.model_copy(update={"threads": worker_threads(settings)})
    uvicorn.Config("tuneforge.serve.app:create_app", log_level="info")  # sets up uvicorn's log format here; loads no app
    install_log_filters()
    # Linux: every worker listens on its own SO_REUSEPORT socket and the kernel spreads new connections
    # evenly over them; the parent's socket only holds the port. Elsewhere the workers share this one.
    port = settings.port
    if REUSE_PORT:  # a plain bind first: it fails even when another reuse-port service holds the port
        with bind(settings.host, port) as probe:
            port = probe.getsockname()[1]  # port 0: the one picked, for every worker
    sock = bind(settings.host, port, reuse_port=REUSE_PORT)
    settings = settings.model_copy(update={"port": port})
    logger.info("Serving on %s with %d workers (Press CTRL+C to quit)", _url(sock), settings.workers)
    metrics_dir = tempfile.mkdtemp(prefix="tuneforge-metrics-")
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = metrics_dir  # inherited by every worker, read by prometheus_client at its import
    try:
        code = Supervisor(model_specs, settings, no_auth, None if REUSE_PORT else sock, metrics_dir).run()
    finally:
        sock.close()
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous
        shutil.rmtree(metrics_dir, ignore_errors=True)
    if code == signal.SIGINT:
        raise KeyboardInterrupt
    if code:
        raise WorkersFailed(f"serve --workers {settings.workers}: {code}")


def bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A socket bound to the service's address; a worker's server calls listen() on it with serve's backlog.

    Made with proto=IPPROTO_TCP: asyncio turns Nagle's algorithm off only on connections
    whose socket says TCP, and an accepted socket inherits `proto` from this one. With
    proto 0 (what `socket.socket(AF_INET)` gives, as uvicorn's own binding does) every
    response waited for the client's delayed ACK: 40 ms more per kept-alive request.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"serve.host/serve.port: cannot listen on {host} port {port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if sock.family == socket.AF_INET6 else f"http://{host}:{port}"


class Supervisor:
    """Starts the workers, replaces the ones that die, and stops them all on SIGTERM or SIGINT."""

    def __init__(self, model_specs, settings: ServeSettings, no_auth: bool, sock, metrics_dir: str):
        self.args = (list(model_specs), settings, no_auth, sock, metrics_dir, logging.getLogger("tuneforge").getEffectiveLevel())
        self.settings, self.metrics_dir = settings, metrics_dir
        self.context = multiprocessing.get_context("spawn")  # a fresh interpreter: no torch threads or locks forked
        self.workers: list = []
        self.crashes: deque[float] = deque()
        self.stop = threading.Event()
        self.signal = 0

    def run(self) -> int | str:
        """0 after a clean stop, the signal number after SIGINT, else why it failed."""
        handlers = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.workers = [self._start() for _ in range(self.settings.workers)]
            failure = ""
            while not failure and not self.stop.wait(0.2):
                failure = self._replace_dead()
            stopped = self._stop_all()
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        if failure or stopped:
            return failure or stopped
        return signal.SIGINT if self.signal == signal.SIGINT else 0

    def _on_signal(self, sig, frame) -> None:
        self.signal = self.signal or sig
        self.stop.set()

    def _start(self):
        process = self.context.Process(target=run_worker, args=self.args, name="tuneforge-worker")
        process.start()
        logger.info("Started worker process [%d]", process.pid)
        return process

    def _replace_dead(self) -> str:
        for i, process in enumerate(self.workers):
            if process.is_alive() or self.stop.is_set():
                continue
            process.join()
            self._forget(process)
            if process.exitcode == STARTUP_FAILURE:
                return f"worker process [{process.pid}] failed to start (see its log above); stopping"
            now = time.monotonic()
            self.crashes.append(now)
            while self.crashes and self.crashes[0] < now - CRASH_WINDOW_S:
                self.crashes.popleft()
            if len(self.crashes) >= MAX_CRASHES:
                return f"{len(self.crashes)} workers died within {CRASH_WINDOW_S:.0f} s; stopping"
            logger.error("Worker process [%d] died (exit code %s); starting a new one", process.pid, process.exitcode)
            self.workers[i] = self._start()
        return ""

    def _stop_all(self) -> str:
        """SIGTERM every worker, wait for them to drain, kill any still running; why it was not clean, if it was not."""
        for process in self.workers:
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        # connections drain within drain_seconds, then the app's shutdown may take as long again (chat answers, batchers)
        deadline = time.monotonic() + 2 * self.settings.drain_seconds + STOP_GRACE_S
        unclean = []
        for process in self.workers:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.exitcode is None:
                process.kill()
                process.join()
                unclean.append(f"[{process.pid}] did not stop in time and was killed")
            elif process.exitcode not in (0, -signal.SIGTERM, -signal.SIGINT):  # signalled before its server took over: idle
                unclean.append(f"[{process.pid}] exited with code {process.exitcode}")
            self._forget(process)
        return ("worker process " + "; ".join(unclean)) if unclean else ""

    def _forget(self, process) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(process.pid, self.metrics_dir)  # its gauges no longer count


def run_worker(model_specs, settings: ServeSettings, no_auth: bool, sock, metrics_dir: str, log_level: int) -> None:
    """One worker: the service on its own SO_REUSEPORT socket, or on the shared `sock`.

    Exit 0 after a drained SIGTERM, 3 if it never started."""
    # Ctrl-C reaches every process of the terminal's group; the parent passes it on as SIGTERM, so the
    # worker needs no SIGINT of its own (uvicorn's handler takes over while it serves and restores this)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s:     [%(process)d] %(name)s: %(message)s")
    logging.getLogger("tuneforge").setLevel(log_level)
    from tuneforge.serve.server import draining_server

    try:
        listener = sock or bind(settings.host, settings.port, reuse_port=True)
        server = draining_server(model_specs, settings, no_auth=no_auth, metrics_dir=metrics_dir)
    except Exception:  # the parent checked the runs, keys and port, so this is the machine or a changed run: do not retry
        logging.getLogger(__name__).exception("worker could not build the service")
        sys.exit(STARTUP_FAILURE)
    server.run(sockets=[listener])
    if not server.started:
        sys.exit(STARTUP_FAILURE)
