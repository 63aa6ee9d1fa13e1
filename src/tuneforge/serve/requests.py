"""What every task route does with a request: authorize, parse and validate, pick the model, batch, await.

Client input never causes a 500: undecodable bytes, bad or too deeply nested
JSON, texts that are not valid Unicode (lone surrogates) or only whitespace are
4xx answers that name the problem, for that request alone.
"""

from __future__ import annotations

import asyncio
import json

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from tuneforge.predict.batcher import BatcherClosed, BatchResult, QueueFull
from tuneforge.serve.auth import is_authorized
from tuneforge.serve.errors import ApiError
from tuneforge.serve.registry import ServedModel
from tuneforge.serve.state import ServiceState


class TextsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: list[StrictStr] = Field(min_length=1, description="Texts to score.")
    model: StrictStr | None = Field(None, description="Served model name; the first model of this task when omitted.")


def authorize(request: Request, state: ServiceState) -> None:
    if not is_authorized(request.headers.get("authorization"), state.key_digests):
        raise ApiError(
            401, "missing or invalid API key (send 'Authorization: Bearer <key>')", "unauthorized", {"WWW-Authenticate": "Bearer"}
        )


def parse_body(raw: bytes, model: type[BaseModel]):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"body is not UTF-8 (byte {exc.start})", "invalid_encoding") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", "invalid_json") from None
    except RecursionError:
        raise ApiError(400, "body JSON is nested too deeply", "json_too_deep") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ApiError(422, f"{where}: {first['msg']}", "invalid_request") from None
    except RecursionError:
        raise ApiError(400, "body JSON is nested too deeply", "json_too_deep") from None


def check_texts(texts: list[str], state: ServiceState) -> None:
    settings = state.settings
    if len(texts) > settings.max_texts:
        raise ApiError(422, f"{len(texts)} texts in one request; the limit (serve.max_texts) is {settings.max_texts}", "too_many_texts")
    for i, t in enumerate(texts):
        if len(t) > settings.max_chars:
            raise ApiError(422, f"texts[{i}] has {len(t)} characters; the limit (serve.max_chars) is {settings.max_chars}", "text_too_long")
        try:
            t.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ApiError(422, f"texts[{i}]: character {exc.start} is not valid Unicode (a lone surrogate)", "invalid_text") from None
        if not t.strip():
            raise ApiError(422, f"texts[{i}] is empty or only whitespace", "empty_text")


def pick_model(name: str | None, state: ServiceState, task: str) -> ServedModel:
    if not state.models:
        raise ApiError(503, "models are not loaded yet", "not_ready", {"Retry-After": "1"})
    if name is None:
        served = next((m for m in state.models.values() if m.task == task), None)
        if served is None:
            raise ApiError(404, f"no served model does task {task!r}; serving: {_describe(state)}", "unknown_model")
        return served
    served = state.models.get(name)
    if served is None:
        raise ApiError(404, f"unknown model {name!r}; serving: {', '.join(state.models)}", "unknown_model")
    if served.task != task:
        raise ApiError(422, f"model {name!r} does task {served.task!r}, not {task!r}; use its route", "wrong_task")
    return served


def _describe(state: ServiceState) -> str:
    return ", ".join(f"{n} ({m.task})" for n, m in state.models.items())


async def parse_and_score(request: Request, state: ServiceState, task: str) -> tuple[ServedModel, BatchResult]:
    """The shared path of every text route: returns the model that answered and its batch result."""
    authorize(request, state)
    payload = parse_body(await request.body(), TextsRequest)
    check_texts(payload.texts, state)
    served = pick_model(payload.model, state, task)
    return served, await queue_and_wait(served, state, payload.texts)


async def queue_and_wait(served: ServedModel, state: ServiceState, items: list) -> BatchResult:
    """Put `items` on the model's batcher and await their rows: 429 when full, 503 when draining, 504 when slow."""
    if state.draining:
        raise ApiError(503, "service is shutting down", "draining", {"Retry-After": "1"})
    try:
        future = served.batcher.submit(items)
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
    return result


def timing_headers(result: BatchResult) -> dict[str, str]:
    return {
        "X-Queue-Time": f"{result.queue_seconds:.6f}",
        "X-Inference-Time": f"{result.inference_seconds:.6f}",
        "X-Batch-Size": str(result.batch_size),
    }
