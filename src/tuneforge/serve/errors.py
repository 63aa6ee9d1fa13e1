"""The service's one error shape: JSON `{"error": ..., "error_type": ...}` plus an `X-Error-Type` header."""

from __future__ import annotations

from fastapi.responses import JSONResponse
from pydantic import BaseModel


class ErrorBody(BaseModel):
    error: str
    error_type: str


class ApiError(Exception):
    def __init__(self, status: int, message: str, error_type: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.error_type, self.headers = status, message, error_type, headers or {}


def error_response(status: int, message: str, error_type: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": message, "error_type": error_type}, status_code=status, headers={"X-Error-Type": error_type, **(headers or {})}
    )
