"""What every route shares: the request schema in OpenAPI and the documented answers, and the
task routes' handler itself (parse, batch, answer); a task route only says how predictions become results.

The OpenAPI document is a contract checked by Schemathesis (tests/test_contract.py):
every status a route can answer is listed with the error body, its headers and its
real media type, and a request the schema accepts is one the service accepts.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer
from pydantic import BaseModel, BeforeValidator, StrictInt

from tuneforge.serve.errors import ErrorBody
from tuneforge.serve.requests import TextsRequest, parse_and_score, timing_headers
from tuneforge.serve.settings import ServeSettings

# A text must hold a character that is not whitespace in Python's sense (`str.isspace`, what
# `str.strip()` removes): spelled out, so every regex dialect (ECMA, Python, Rust) reads it alike.
NOT_BLANK = "[^\\u0009-\\u000d\\u001c-\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"

_STRING = {"schema": {"type": "string"}}


def whole_number(value):
    """JSON Schema's integer includes 10.0; Python's does not. Whole floats become ints, anything else stays as sent."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


WholeNumber = Annotated[StrictInt, BeforeValidator(whole_number)]
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


def request_body(settings: ServeSettings) -> dict:
    """`openapi_extra=` for a text route: `TextsRequest` with this service's limits, so the schema
    accepts exactly what `requests.check_texts` accepts (up to the body size, serve.max_body_bytes).
    Its `model` field is filled in once the models are loaded (`routes.document_served_models`)."""
    schema = copy.deepcopy(TextsRequest.model_json_schema())
    texts = schema["properties"]["texts"]
    texts["maxItems"] = settings.max_texts
    texts["items"] = {
        "type": "string",
        "minLength": 1,
        "maxLength": settings.max_chars,
        "pattern": NOT_BLANK,
        "description": "Not only whitespace; valid Unicode (no lone surrogates); at most serve.max_chars characters.",
    }
    texts["description"] = f"{texts.get('description', '')} At most serve.max_texts of them.".strip()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


BEARER = HTTPBearer(auto_error=False, description="Only when API keys are configured (TUNEFORGE_API_KEYS, serve.api_keys_file).")


def auth(state) -> list:
    """`dependencies=` of a route that `requests.authorize` guards: declares the bearer scheme in
    OpenAPI when keys are configured (the check itself stays in `authorize`)."""
    return [Security(BEARER)] if state.key_digests else []


def model_choices(state, task: str) -> dict:
    """The `model` field's schema for a task's route: the names of the served models of that task.

    Another name is answered 404 (unknown) or 422 (a model of another task), so the schema
    lists the valid ones; with none served, only null (the route then answers 404).
    """
    names = [m.name for m in state.models.values() if m.task == task]
    choices = [{"type": "string", "enum": names}] if names else []
    return {
        "anyOf": [*choices, {"type": "null"}],
        "title": "Model",
        "description": "Served model of this task (see /v1/models); the first one when omitted.",
    }


def window_flags(served, result) -> list[tuple[bool, int]]:
    """(truncated, chunks) per text from the window counts the batcher computed beside the scores."""
    windows = result.extras[0].tolist() if result.extras else [1] * len(result.probabilities)
    chunked = served.predictor.long_texts == "chunk"
    return [(n > 1 and not chunked, n if chunked else 1) for n in windows]


def post_json(
    api: APIRouter, state, path: str, *, response: type[BaseModel], body: dict, summary: str, name: str, answer: str, headers=None
):
    """The decorator of a JSON POST route: its request schema, the service's auth, and every shared error answer documented."""
    return api.post(
        path,
        response_model=response,
        responses={**ok(answer, headers), **ERRORS},
        openapi_extra=body,
        dependencies=auth(state),
        summary=summary,
        name=name,
    )


def text_route(
    state, *, task: str, path: str, response: type[BaseModel], results: Callable[[list, list[tuple[bool, int]]], list], summary: str
) -> APIRouter:
    """A POST route for `task`: `results(predictions, window_flags)` builds the per-text result models."""
    api = APIRouter()

    @post_json(
        api,
        state,
        path,
        response=response,
        body=request_body(state.settings),
        summary=summary,
        name=task,
        answer="Results per text, in the order of `texts`.",
        headers=TIMING_HEADERS,
    )
    async def handle(request: Request) -> JSONResponse:
        served, result = await parse_and_score(request, state, task)
        rows = results(served.predictor.to_predictions(result.probabilities), window_flags(served, result))
        return JSONResponse(response(model=served.name, results=rows).model_dump(), headers=timing_headers(result))

    return api
