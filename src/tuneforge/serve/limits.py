"""Body-size limit as ASGI middleware: answers 413 before reading past the limit."""

from __future__ import annotations

import json


class BodyLimitMiddleware:
    def __init__(self, app, *, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_body_bytes
            except ValueError:
                return await _reject(send, 400, "Content-Length is not a number", "invalid_request")
            if too_big:
                return await _reject(send, 413, f"request body over {self.max_body_bytes} bytes", "body_too_large")
        chunks, size, more = [], 0, True
        while more:  # buffer (bounded) so a chunked body cannot exceed the limit either
            message = await receive()
            if message["type"] == "http.disconnect":  # gone mid-body (or cut by serve.read_timeout_s): answer for the
                # metrics and the middleware above, which would report a missing response as a 500; nobody reads it
                return await _reject(send, 400, "client disconnected before the body was complete", "client_disconnected")
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_body_bytes:
                return await _reject(send, 413, f"request body over {self.max_body_bytes} bytes", "body_too_large")
            chunks.append(body)
            more = message.get("more_body", False)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _reject(send, status: int, message: str, error_type: str) -> None:
    body = json.dumps({"error": message, "error_type": error_type}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"x-error-type", error_type.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
