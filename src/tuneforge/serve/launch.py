"""`tuneforge serve`: one draining server in this process, or `serve.workers` of them under a supervisor."""

from __future__ import annotations

import logging

from tuneforge.serve.connections import check_file_limit
from tuneforge.serve.server import draining_server
from tuneforge.serve.settings import ServeSettings

logger = logging.getLogger(__name__)


def serve(model_specs: list[str], settings: ServeSettings, *, no_auth: bool = False) -> None:
    if settings.workers > 1:
        from tuneforge.serve.workers import serve_workers  # the supervisor: imports nothing the workers load

        serve_workers(model_specs, settings, no_auth=no_auth)
        return
    if problem := check_file_limit(settings.max_connections):
        logger.warning(problem)
    draining_server(model_specs, settings, no_auth=no_auth).run()
