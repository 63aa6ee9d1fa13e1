"""What every route shares: the request schema in OpenAPI and the documented answers, and the
task routes' handler itself (parse, batch, answer); a task route only says how predictions become results.

The OpenAPI document is a contract checked by Schemathesis (tests/test_contract.py):
every status a route can answer is listed with the error body, its headers and its
real media type, and the response schemas are the bodies the routes send.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from tuneforge.serve.errors import ErrorBody
from tuneforge.serve.requests import TextsRequest, parse_and_score, timing_headers

_STRING = {"schema": {"type": "string"}}
ERROR_TYPE_HEADER = {"X-Error-Type": {"description": "The body's `error_type`.", "required": True, **_STRING}}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "required": True, **_STRING}}
TIMING_HEADERS = {
    "X-Queue-Time": {"description": "Seconds the texts waited for their batch.", "required": True, **_STRING},
    "X-Inference-Time": {"description": "Seconds of the batch's forward pass.", "required": True, **_STRING},
    "X-Batch-Size": {"description": "Texts in the batch these texts ran in.", "required": True, **_STRING},
}

_ANSWERS = {
    400: ("Body is not UTF-8 or not JSON, JSON nested too deeply, or Content-Length not a number", {}),
    401: (
        "API keys are configured and the bearer key is missing or wrong",
        {"WWW-Authenticate": {"description": "`Bearer`", "required": True, **_STRING}},
    ),
    404: ("Unknown model name, or no served model does this task", {}),
    413: ("Body over serve.max_body_bytes (not read past the limit)", {}),
    422: ("Request does not fit the schema or serve.max_texts / serve.max_chars, or names a model of another task", {}),
    429: ("The model's queue is full; retry after Retry-After seconds", {}),
    500: ("Unexpected error (a bug); details in the server log, never the request body", {}),
    503: ("Models are not loaded yet, or the service is shutting down", {}),
    504: ("Not answered within serve.request_timeout_s", {}),
}


def errors(*statuses: int, retry_after: tuple[int, ...] = (), by_ref: bool = False, **descriptions: str) -> dict:
    """`responses=` entries for these statuses: the shared error body (JSON) and its headers.

    `retry_after`: statuses answered with a Retry-After header; `descriptions` overrides a
    status's description, keyed `s503="..."`. `by_ref` for a route whose own media type is
    not JSON (FastAPI files a `model` under the route's media type): the body is then given
    as a reference to the ErrorBody schema that the JSON routes put in the document.
    """
    body = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}} if by_ref else {"model": ErrorBody}
    out = {}
    for status in statuses:
        what, headers = _ANSWERS[status]
        out[status] = {
            **body,
            "description": descriptions.get(f"s{status}", what),
            "headers": {**ERROR_TYPE_HEADER, **headers, **(RETRY_AFTER if status in retry_after else {})},
        }
    return out


# What a text route (`POST /v1/<task>`) can answer besides 200 (`requests.parse_and_score`).
ERRORS = errors(400, 401, 404, 413, 422, 429, 500, 503, 504, retry_after=(429, 503))


def ok(description: str, headers: dict | None = None) -> dict:
    return {200: {"description": description, **({"headers": headers} if headers else {})}}


REQUEST_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": TextsRequest.model_json_schema()}}}}


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

    @api.post(
        path,
        response_model=response,
        responses={**ok("Results per text, in the order of `texts`.", TIMING_HEADERS), **ERRORS},
        openapi_extra=REQUEST_BODY,
        summary=summary,
        name=task,
    )
    async def handle(request: Request) -> JSONResponse:
        served, result = await parse_and_score(request, state, task)
        rows = results(served.predictor.to_predictions(result.probabilities), window_flags(served, result))
        return JSONResponse(response(model=served.name, results=rows).model_dump(), headers=timing_headers(result))

    return api
