"""The FastAPI application: routes, error shapes, auth, metrics and lifecycle.

Every error is JSON `{"error": ..., "error_type": ...}` with a 4xx status where
the client can act on it (never a 500 for bad input). Models load in the
lifespan; on shutdown the service reports not-ready, finishes queued work and
stops the batchers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from tuneforge.serve.auth import is_authorized, load_key_digests
from tuneforge.serve.batcher import BatcherClosed, QueueFull
from tuneforge.serve.limits import BodyLimitMiddleware
from tuneforge.serve.metrics import ServiceMetrics
from tuneforge.serve.registry import ServedModel
from tuneforge.serve.settings import ServeSettings

logger = logging.getLogger(__name__)


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: list[StrictStr] = Field(min_length=1, description="Texts to classify.")
    model: StrictStr | None = Field(None, description="Served model name; the first one when omitted.")


class TextResult(BaseModel):
    label: str
    score: float
    probabilities: dict[str, float]
    truncated: bool = Field(description="The text was longer than the model window and was cut (serve.long_texts=truncate).")
    chunks: int = Field(1, description="Model windows scored and averaged for this text (more than 1 with serve.long_texts=chunk).")


class ClassifyResponse(BaseModel):
    model: str
    results: list[TextResult]


@dataclass
class ServiceState:
    settings: ServeSettings
    metrics: ServiceMetrics
    models: dict[str, ServedModel] = field(default_factory=dict)
    key_digests: list[bytes] = field(default_factory=list)
    draining: bool = False


class ApiError(Exception):
    def __init__(self, status: int, message: str, error_type: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.error_type, self.headers = status, message, error_type, headers or {}


def error_response(status: int, message: str, error_type: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": message, "error_type": error_type}, status_code=status, headers={"X-Error-Type": error_type, **(headers or {})}
    )


def create_app(state: ServiceState, *, load=None) -> FastAPI:
    """`load()` (optional) fills `state.models` at startup; tests pass ready models instead."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if load is not None:
            state.models.update(await run_in_threadpool(load))
        yield
        state.draining = True
        for served in state.models.values():
            await run_in_threadpool(served.batcher.close, state.settings.drain_seconds)

    app = FastAPI(title="tuneforge", version="1", lifespan=lifespan, description="Text classification with micro-batching.")
    app.state.service = state
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=state.settings.max_body_bytes)

    @app.middleware("http")
    async def count_requests(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        state.metrics.requests.labels(path, str(response.status_code), response.headers.get("X-Error-Type", "")).inc()
        state.metrics.request_seconds.labels(path).observe(time.perf_counter() - started)
        return response

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.message, exc.error_type, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, str(exc.detail), kind)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        logger.exception("unhandled error on %s", request.url.path)  # path only: bodies are never logged
        return error_response(500, "internal error; see the server log", "internal")

    _routes(app, state)
    return app


def _routes(app: FastAPI, state: ServiceState) -> None:
    schema = ClassifyRequest.model_json_schema()

    @app.post(
        "/v1/classify",
        response_model=ClassifyResponse,
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}},
        summary="Classify texts; labels with probabilities per text.",
    )
    async def classify(request: Request) -> Response:
        _authorize(request, state)
        payload = _parse(await request.body(), state.settings)
        served = _pick_model(payload.model, state)
        if state.draining:
            raise ApiError(503, "service is shutting down", "draining", {"Retry-After": "1"})
        try:
            future = served.batcher.submit(payload.texts)
        except QueueFull as exc:
            raise ApiError(429, f"too busy: {exc}", "queue_full", {"Retry-After": "1"}) from None
        except BatcherClosed:
            raise ApiError(503, "service is shutting down", "draining", {"Retry-After": "1"}) from None
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(future), timeout=state.settings.request_timeout_s)
        except asyncio.TimeoutError:
            future.cancel()  # still queued: the batcher skips it and frees its slot
            raise ApiError(504, f"not answered within {state.settings.request_timeout_s} s", "timeout") from None
        state.metrics.queue_seconds.labels(served.name).observe(result.queue_seconds)
        predictions = served.predictor.to_predictions(result.probabilities)
        windows = result.extras[0].tolist() if result.extras else [1] * len(predictions)
        chunked = served.predictor.long_texts == "chunk"
        body = ClassifyResponse(
            model=served.name,
            results=[
                TextResult(
                    label=p.label, score=p.score, probabilities=p.probabilities, truncated=n > 1 and not chunked, chunks=n if chunked else 1
                )
                for p, n in zip(predictions, windows)
            ],
        )
        headers = {
            "X-Queue-Time": f"{result.queue_seconds:.6f}",
            "X-Inference-Time": f"{result.inference_seconds:.6f}",
            "X-Batch-Size": str(result.batch_size),
        }
        return JSONResponse(body.model_dump(), headers=headers)

    @app.get("/v1/models", summary="Served models: labels, method, metrics, runtime backend.")
    async def models(request: Request) -> dict:
        _authorize(request, state)
        return {"models": [m.describe() for m in state.models.values()]}

    @app.get("/healthz", summary="The process is alive.")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", summary="Models are loaded and queues have room.")
    async def readyz() -> Response:
        if state.draining:
            return error_response(503, "shutting down", "draining")
        if not state.models:
            return error_response(503, "models are not loaded yet", "not_ready")
        full = [m.name for m in state.models.values() if m.batcher.depth >= m.batcher.max_queue]
        if full:
            return error_response(503, f"queue saturated for {', '.join(full)}", "saturated")
        return JSONResponse({"status": "ready", "models": list(state.models)})

    @app.get("/metrics", summary="Prometheus metrics.")
    async def metrics() -> Response:
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4")


def _authorize(request: Request, state: ServiceState) -> None:
    if not is_authorized(request.headers.get("authorization"), state.key_digests):
        raise ApiError(
            401, "missing or invalid API key (send 'Authorization: Bearer <key>')", "unauthorized", {"WWW-Authenticate": "Bearer"}
        )


def _parse(raw: bytes, settings: ServeSettings) -> ClassifyRequest:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"body is not UTF-8 (byte {exc.start})", "invalid_encoding") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", "invalid_json") from None
    try:
        payload = ClassifyRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ApiError(422, f"{where}: {first['msg']}", "invalid_request") from None
    if len(payload.texts) > settings.max_texts:
        raise ApiError(
            422, f"{len(payload.texts)} texts in one request; the limit (serve.max_texts) is {settings.max_texts}", "too_many_texts"
        )
    for i, t in enumerate(payload.texts):
        if len(t) > settings.max_chars:
            raise ApiError(422, f"texts[{i}] has {len(t)} characters; the limit (serve.max_chars) is {settings.max_chars}", "text_too_long")
    return payload


def _pick_model(name: str | None, state: ServiceState) -> ServedModel:
    if not state.models:
        raise ApiError(503, "models are not loaded yet", "not_ready", {"Retry-After": "1"})
    if name is None:
        return next(iter(state.models.values()))
    served = state.models.get(name)
    if served is None:
        raise ApiError(404, f"unknown model {name!r}; serving: {', '.join(state.models)}", "unknown_model")
    return served


def build_state(settings: ServeSettings) -> ServiceState:
    return ServiceState(settings=settings, metrics=ServiceMetrics(), key_digests=load_key_digests(settings.api_keys_file))
