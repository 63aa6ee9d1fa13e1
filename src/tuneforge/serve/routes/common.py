"""Pieces every task route shares: the request schema in OpenAPI and the documented error answers."""

from __future__ import annotations

from tuneforge.serve.errors import ErrorBody
from tuneforge.serve.requests import TextsRequest

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
