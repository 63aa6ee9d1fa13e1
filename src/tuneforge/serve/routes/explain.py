"""`POST /v1/explain`: per-word attributions of one text for the predicted (or a named) label of a classify model;
for a multilabel model, per label above its threshold; for an entities model, per found span (`label`: one entity type).

An explanation costs tens of forward and backward passes (integrated gradients) or
hundreds of forward passes (LIME, `num_samples`, capped at MAX_SAMPLES), so the service runs one at
a time (off the event loop) and answers 429 with Retry-After while one is running,
instead of letting explanations queue up behind each other and starve classification.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr
from starlette.concurrency import run_in_threadpool

from tuneforge.errors import ConfigError, DataError
from tuneforge.serve.errors import ApiError
from tuneforge.serve.requests import authorize, check_texts, parse_body, pick_model
from tuneforge.serve.routes.common import NOT_BLANK, WholeNumber, post_json

MAX_STEPS = 256
MAX_SAMPLES = 2000  # LIME samples per request: each is a forward pass, and one explanation holds the slot


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: StrictStr = Field(description="The text to explain.")
    label: StrictStr | None = Field(
        None, description="Explain this label instead of the predicted one(s); entities: only spans of this type."
    )
    method: Literal["auto", "ig", "lime", "linear"] = Field(
        "auto", description="auto: linear for tfidf models, integrated gradients (ig) otherwise; lime works for any classify model."
    )
    steps: WholeNumber = Field(32, ge=4, le=MAX_STEPS, description="Integrated-gradients steps.")
    num_samples: WholeNumber = Field(500, ge=16, le=MAX_SAMPLES, description="LIME: perturbed texts scored (more: slower, steadier).")
    seed: WholeNumber = Field(0, ge=0, le=2**32 - 1, description="LIME: seed of the perturbations.")
    model: StrictStr | None = Field(None, description="Served classify, multilabel or entities model; the first one when omitted.")


class Word(BaseModel):
    text: str
    start: int = Field(description="Offset in `text` of the answer (the text as the model read it).")
    end: int
    attribution: float = Field(description="Positive: pushed towards the label; negative: away from it.")


class ExplainResponse(BaseModel):
    model: str
    label: str
    score: float = Field(description="The model's probability of `label`.")
    method: str = Field(description="integrated_gradients (transformer models), linear (tfidf) or lime.")
    text: str = Field(description="The text after the model's recorded transforms (what the offsets index).")
    words: list[Word]
    completeness: float | None = Field(description="Integrated gradients: |sum of attributions - (f(text) - f(baseline))|; near 0 is good.")
    local_fit: float | None = Field(description="LIME: R² of its local linear model on the samples; near 1 is good.")


class LabelAttributions(BaseModel):
    label: str
    score: float = Field(description="The model's probability of `label`.")
    threshold: float = Field(description="The label's decision threshold.")
    predicted: bool = Field(description="Above its threshold (false: no label passed, the most likely one is explained).")
    words: list[Word]
    completeness: float | None


class LabelsExplainResponse(BaseModel):
    model: str
    method: str = Field(description="integrated_gradients (transformer and head models) or linear (tfidf).")
    text: str = Field(description="The text after the model's recorded transforms (what the offsets index).")
    labels: list[LabelAttributions] = Field(description="One explanation per label above its threshold, best first (or the one asked for).")


class SpanAttributions(BaseModel):
    label: str = Field(description="The entity type.")
    start: int
    end: int
    text: str
    score: float = Field(description="The mean probability of the span's tags.")
    words: list[Word] = Field(description="How much each word of the text pushed the span's tag scores up (or down).")
    completeness: float | None


class SpansExplainResponse(BaseModel):
    model: str
    method: str = Field(description="integrated_gradients.")
    text: str
    entities: list[SpanAttributions] = Field(description="One explanation per found entity (of type `label` when given).")


RESPONSES = {"label": ExplainResponse, "labels": LabelsExplainResponse, "spans": SpansExplainResponse}  # by `Task.explains`


def _pick(name: str | None, state):
    """The model to explain: the named one, or the first served model whose task has explanations."""
    from tuneforge.tasks import get_task

    if name is None:
        task = next((m.task for m in state.models.values() if get_task(m.task).explainable), "classify")
        return pick_model(None, state, task)
    served = state.models.get(name)
    if served is not None and not get_task(served.task).explainable:
        raise ApiError(
            422, f"model {name!r} does task {served.task!r}, which has no explanations (classify, multilabel, entities do)", "wrong_task"
        )
    return pick_model(name, state, served.task if served else "classify")


def _body(settings) -> dict:
    schema = copy.deepcopy(ExplainRequest.model_json_schema())
    schema["properties"]["text"].update({"minLength": 1, "maxLength": settings.max_chars, "pattern": NOT_BLANK})
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def router(state) -> APIRouter:
    api = APIRouter()
    running = asyncio.Semaphore(1)

    @post_json(
        api,
        state,
        "/v1/explain",
        response=ExplainResponse | LabelsExplainResponse | SpansExplainResponse,
        body=_body(state.settings),
        summary="Which words pushed a model towards a label, or made an entity (integrated gradients, exact for tfidf, or LIME).",
        name="explain",
        answer="Attributions per word.",
    )
    async def explain(request: Request) -> JSONResponse:
        from tuneforge.analysis.explain import explain as explain_text
        from tuneforge.tasks import get_task

        authorize(request, state)
        payload = parse_body(await request.body(), ExplainRequest)
        check_texts([payload.text], state)
        served = _pick(payload.model, state)
        offered = served_methods([m for m in state.models.values() if get_task(m.task).explainable])
        if payload.method not in offered:  # what /openapi.json documents is what is taken, whichever model is named
            raise ApiError(
                422,
                f"method: {payload.method!r} is not offered here; this service's models all take {', '.join(offered)}",
                "invalid_request",
            )
        if state.draining:
            raise ApiError(503, "service is shutting down", "draining", {"Retry-After": "1"})
        if running.locked():
            raise ApiError(429, "an explanation is already running; retry shortly", "busy", {"Retry-After": "1"})
        await running.acquire()
        # a worker thread cannot be stopped: the slot is freed when it ends, not when the client stops waiting, so
        # a request that times out (or a client that leaves) never lets a second explanation run beside it
        work = asyncio.ensure_future(
            run_in_threadpool(
                explain_text,
                served.predictor,
                payload.text,
                label=payload.label,
                method=payload.method,
                steps=payload.steps,
                num_samples=payload.num_samples,
                seed=payload.seed,
            )
        )
        work.add_done_callback(_free(running))
        try:
            result = await asyncio.wait_for(asyncio.shield(work), timeout=state.settings.request_timeout_s * 6)
        except (DataError, ConfigError) as exc:
            raise ApiError(422, str(exc), "invalid_request") from None
        except asyncio.TimeoutError:
            raise ApiError(
                504,
                "explanation not finished in time; use fewer steps or num_samples (it finishes in the background, "
                "and explanations are refused with 429 until then)",
                "timeout",
                {"Retry-After": "5"},
            ) from None
        shape = RESPONSES[served.predictor.task.explains]
        return JSONResponse(shape(model=served.name, **result.to_dict()).model_dump())

    return api


def _free(slot: asyncio.Semaphore):
    """A done-callback: release the explanation slot, and take the outcome so a late failure is not reported unread."""

    def release(work: asyncio.Future) -> None:
        slot.release()
        if not work.cancelled():
            work.exception()

    return release


def served_methods(models) -> tuple[str, ...]:
    """The explanation methods every one of `models` takes: what the service documents and accepts."""
    from tuneforge.analysis.explain import METHODS, methods_for

    return tuple(m for m in METHODS if all(m in methods_for(model.predictor) for model in models))


def document_labels(schema: dict, state) -> None:
    """Fill the request's `model` and `label` fields with the served models that can be explained and their labels."""
    body = schema["paths"]["/v1/explain"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    from tuneforge.tasks import get_task

    explainable = [m for m in state.models.values() if get_task(m.task).explainable]
    labels = sorted({label for m in explainable for label in m.predictor.meta.labels})
    body["properties"]["model"] = {
        "anyOf": [*([{"type": "string", "enum": [m.name for m in explainable]}] if explainable else []), {"type": "null"}],
        "title": "Model",
        "description": "Served classify, multilabel or entities model (see /v1/models); the first one when omitted.",
    }
    offered = served_methods(explainable)
    body["properties"]["method"] = {
        "type": "string",
        "enum": list(offered),
        "default": "auto",
        "description": "How to explain: auto (linear for tfidf, integrated gradients for transformer and head models, LIME "
        "otherwise), ig, lime or linear — of those, the ones every served model takes (listed here).",
    }
    body["properties"]["label"] = {
        "anyOf": [*([{"type": "string", "enum": labels}] if labels else []), {"type": "null"}],
        "description": "A label (entities: an entity type) of the chosen model (see /v1/models); the predicted one(s) when omitted.",
    }
