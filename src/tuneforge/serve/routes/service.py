"""The service's own routes: `/v1/models`, `/healthz`, `/readyz`, `/metrics`, each documented as it answers."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from tuneforge.serve.errors import error_response
from tuneforge.serve.requests import authorize
from tuneforge.serve.routes.common import auth, errors, ok


class ModelInfo(BaseModel):
    name: str
    task: str = Field(description="classify, multilabel, entities, recommend or chat.")
    route: str = Field(description="The route that serves this model, e.g. /v1/classify (recommend: also /v1/similar).")
    labels: list[str]
    method: str = Field(
        description="Training method: full, lora, head, tfidf or lstm; for recommend popular, als, bpr, ease, content or hybrid."
    )
    kind: str
    base_model: str | None
    max_length: int | None = Field(description="Model window in tokens (words for lstm); null for tfidf.")
    backend: str = Field(description="Runtime: torch, onnxruntime, sklearn, numpy (recommend), or torch + faiss / numpy (chat).")
    variant: str = Field(description="Served variant: original or a compressed one (int8, ...).")
    metrics: dict[str, Any] = Field(description="Test metrics from the run, when it recorded them.")


class ModelsResponse(BaseModel):
    models: list[ModelInfo]


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    models: list[str]


class PrometheusText(PlainTextResponse):
    """Prometheus text exposition format 0.0.4 (Starlette appends `; charset=utf-8`)."""

    media_type = "text/plain; version=0.0.4"


def router(state) -> APIRouter:
    api = APIRouter()

    @api.get(
        "/v1/models",
        response_model=ModelsResponse,
        responses={**ok("The served models."), **errors(401, 500)},
        dependencies=auth(state),
        summary="Served models: task, labels, method, metrics, runtime backend.",
    )
    async def models(request: Request) -> JSONResponse:
        authorize(request, state)
        # not filtered through ModelsResponse: a key describe() drops or renames fails the contract test
        return JSONResponse({"models": [m.describe() for m in state.models.values()]})

    @api.get("/healthz", response_model=Health, responses={**ok("The process is alive."), **errors(500)}, summary="The process is alive.")
    async def healthz() -> dict:
        return {"status": "ok"}

    @api.get(
        "/readyz",
        response_model=Ready,
        responses={
            **ok("Models are loaded and every queue has room."),
            **errors(500, 503, s503="Not ready: models loading (`not_ready`), queue saturated (`saturated`) or shutting down (`draining`)"),
        },
        summary="Models are loaded and queues have room.",
    )
    async def readyz() -> JSONResponse:
        if state.draining:
            return error_response(503, "shutting down", "draining")
        if not state.models:
            return error_response(503, "models are not loaded yet", "not_ready")
        full = [m.name for m in state.models.values() if _saturated(m)]
        if full:
            return error_response(503, f"queue saturated for {', '.join(full)}", "saturated")
        return JSONResponse({"status": "ready", "models": list(state.models)})

    @api.get(
        "/metrics",
        response_class=PrometheusText,
        responses={
            **ok("Prometheus text format: request counts and latency, queue, inference and batch-size histograms."),
            **errors(500, by_ref=True),
        },
        summary="Prometheus metrics.",
    )
    async def metrics() -> PrometheusText:
        return PrometheusText(state.metrics.render())

    return api


def _saturated(served) -> bool:
    if served.slots is not None:  # a generating model: every slot taken and the waiting line full
        slots = served.slots
        return slots.active >= slots.max_active and slots.waiting >= slots.max_waiting
    return served.batcher.depth >= served.batcher.max_queue
