"""Run the service with uvicorn; SIGTERM drains in-flight requests, then exits 0.

Connections are guarded (`serve/connections.py`: read deadline, connection cap) and
the log is filtered (`serve/logs.py`: repeats counted, query strings hidden). With
`serve.workers` above 1, `serve/workers.py` runs this same server in each worker process.
"""

from __future__ import annotations

import logging
import signal

from tuneforge.serve.app import build_state, create_app
from tuneforge.serve.auth import check_exposure, load_key_digests
from tuneforge.serve.connections import accept_backlog, guarded_protocol
from tuneforge.serve.logs import install as install_log_filters
from tuneforge.serve.registry import load_models, parse_model_specs, servable_meta
from tuneforge.serve.settings import ServeSettings

logger = logging.getLogger(__name__)


def check_service(model_specs: list[str], settings: ServeSettings, *, no_auth: bool = False):
    """Fail before binding a port if a run is missing, unfinished or not servable, or the keys do not fit the host."""
    specs = parse_model_specs(model_specs)
    for _, run_dir in specs:
        servable_meta(run_dir, settings.variant)
    check_exposure(settings.host, load_key_digests(settings.api_keys_file), no_auth)
    return specs


def build_service(model_specs: list[str], settings: ServeSettings, *, no_auth: bool = False, metrics_dir: str | None = None):
    """The app and its state; models load in the app's lifespan (specs and keys are checked now).

    `metrics_dir`: a worker's PROMETHEUS_MULTIPROC_DIR, so `/metrics` merges every worker's.
    """
    specs = check_service(model_specs, settings, no_auth=no_auth)
    state = build_state(settings, metrics_dir=metrics_dir)
    app = create_app(state, load=lambda: load_models(specs, settings, state.metrics))
    return app, state


def draining_server(model_specs: list[str], settings: ServeSettings, *, no_auth: bool = False, metrics_dir: str | None = None):
    """A uvicorn server for the service whose SIGTERM marks it draining, drains, and ends the process with 0."""
    import uvicorn

    app, state = build_service(model_specs, settings, no_auth=no_auth, metrics_dir=metrics_dir)

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig, frame):
            state.draining = True  # /readyz turns 503 at once so balancers stop sending
            super().handle_exit(sig, frame)
            if sig == signal.SIGTERM:
                # uvicorn re-raises captured signals after draining; a drained SIGTERM is a
                # clean, requested stop, so exit 0 (what process supervisors expect).
                self._captured_signals = [s for s in self._captured_signals if s != signal.SIGTERM]

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=guarded_protocol(max_connections=settings.max_connections, read_timeout_s=settings.read_timeout_s),
        backlog=accept_backlog(settings.max_connections),
        timeout_keep_alive=settings.keep_alive_s,  # type: ignore[arg-type]  # a float works: it goes to call_later
        timeout_graceful_shutdown=settings.drain_seconds,
        log_level="info",
        access_log=True,  # method, path (no query) and status only: bodies are never logged
        server_header=False,
    )
    install_log_filters()  # after uvicorn.Config, which configures its loggers
    return DrainingServer(config)
