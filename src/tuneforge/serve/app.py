"""The FastAPI application: task routes, error shapes, auth, metrics and lifecycle.

Every error is JSON `{"error": ..., "error_type": ...}` with a 4xx status where
the client can act on it (never a 500 for bad input). Models load in the
lifespan; on shutdown the service reports not-ready, finishes queued work and
stops the batchers. Each task brings its own router (`serve/routes/`); the service's
own routes (models, health, readiness, metrics) are `serve/routes/service.py`.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from tuneforge.serve.auth import load_key_digests
from tuneforge.serve.errors import ApiError, error_response
from tuneforge.serve.limits import BodyLimitMiddleware
from tuneforge.serve.metrics import ServiceMetrics
from tuneforge.serve.routes import ROUTERS, document_served_models, service
from tuneforge.serve.settings import ServeSettings
from tuneforge.serve.state import ServiceState

logger = logging.getLogger(__name__)

__all__ = ["ApiError", "ServiceState", "build_state", "create_app", "error_response"]


def create_app(state: ServiceState, *, load=None) -> FastAPI:
    """`load()` (optional) fills `state.models` at startup; tests pass ready models instead."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if load is not None:
            state.models.update(await run_in_threadpool(load))
        yield
        state.draining = True
        for served in state.models.values():
            if served.slots is not None:  # answers being generated finish, within the drain time
                await served.slots.wait_idle(state.settings.drain_seconds)
            if served.batcher is not None:
                await run_in_threadpool(served.batcher.close, state.settings.drain_seconds)

    app = FastAPI(
        title="tuneforge",
        version="1",
        lifespan=lifespan,
        description="Text classification, tagging and entities, and recommendations, with micro-batching.",
    )
    app.state.service = state
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=state.settings.max_body_bytes)
    worker = str(os.getpid()) if state.settings.workers > 1 else ""  # which worker answered, for logs and balancer checks

    @app.middleware("http")
    async def count_requests(request: Request, call_next):
        started = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception:  # answered 500 by the outer error handler: count it too
            _count(state, request, "500", "internal", started)
            raise
        _count(state, request, str(response.status_code), response.headers.get("X-Error-Type", ""), started)
        if worker:
            response.headers["X-Worker"] = worker
        return response

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.message, exc.error_type, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, str(exc.detail), kind, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        logger.exception("unhandled error on %s", request.url.path)  # path only: bodies are never logged
        return error_response(500, "internal error; see the server log", "internal")

    for build in ROUTERS.values():
        app.include_router(build(state))
    app.include_router(service.router(state))
    app.openapi = lambda: document_served_models(FastAPI.openapi(app), state)
    return app


def _count(state: ServiceState, request: Request, status: str, error_type: str, started: float) -> None:
    path = getattr(request.scope.get("route"), "path", "unmatched")
    state.metrics.requests.labels(path, status, error_type).inc()
    state.metrics.request_seconds.labels(path).observe(time.perf_counter() - started)


def build_state(settings: ServeSettings, *, metrics_dir: str | None = None) -> ServiceState:
    """`metrics_dir`: where every worker's metrics are written (several workers), merged by `/metrics`."""
    metrics = ServiceMetrics(merge_dir=metrics_dir)
    return ServiceState(settings=settings, metrics=metrics, key_digests=load_key_digests(settings.api_keys_file))
