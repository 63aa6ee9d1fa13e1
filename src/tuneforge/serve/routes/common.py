"""What every task route shares: the request schema in OpenAPI, the documented error answers,
and the handler itself (parse, batch, answer); a task route only says how predictions become results."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from tuneforge.serve.errors import ErrorBody
from tuneforge.serve.requests import TextsRequest, parse_and_score, timing_headers

REQUEST_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": TextsRequest.model_json_schema()}}}}
ERRORS = {
    status: {"model": ErrorBody, "description": what}
    for status, what in (
        (400, "Body is not UTF-8 or not JSON"),
        (401, "Missing or invalid API key"),
        (404, "Unknown model"),
        (413, "Body over serve.max_body_bytes"),
        (422, "Request does not fit the schema or the limits"),
        (429, "Queue full; retry after Retry-After seconds"),
        (503, "Not ready or shutting down"),
        (504, "Not answered within serve.request_timeout_s"),
    )
}


def window_flags(served, result) -> list[tuple[bool, int]]:
    """(truncated, chunks) per text from the window counts the batcher computed beside the scores."""
    windows = result.extras[0].tolist() if result.extras else [1] * len(result.probabilities)
    chunked = served.predictor.long_texts == "chunk"
    return [(n > 1 and not chunked, n if chunked else 1) for n in windows]


def text_route(
    state, *, task: str, path: str, response: type[BaseModel], results: Callable[[list, list[tuple[bool, int]]], list], summary: str
) -> APIRouter:
    """A POST route for `task`: `results(predictions, window_flags)` builds the per-text result models."""
    api = APIRouter()

    @api.post(path, response_model=response, responses=ERRORS, openapi_extra=REQUEST_BODY, summary=summary, name=task)
    async def handle(request: Request) -> JSONResponse:
        served, result = await parse_and_score(request, state, task)
        rows = results(served.predictor.to_predictions(result.probabilities), window_flags(served, result))
        return JSONResponse(response(model=served.name, results=rows).model_dump(), headers=timing_headers(result))

    return api
