"""`POST /v1/classify`: one label per text, with the probability of every label."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from tuneforge.serve.requests import parse_and_score, timing_headers
from tuneforge.serve.routes.common import ERRORS, REQUEST_BODY


class TextResult(BaseModel):
    label: str
    score: float
    probabilities: dict[str, float]
    truncated: bool = Field(description="The text was longer than the model window and was cut (serve.long_texts=truncate).")
    chunks: int = Field(1, description="Model windows scored and averaged for this text (more than 1 with serve.long_texts=chunk).")


class ClassifyResponse(BaseModel):
    model: str
    results: list[TextResult]


def window_flags(served, result) -> list[tuple[bool, int]]:
    """(truncated, chunks) per text from the window counts the batcher computed beside the scores."""
    windows = result.extras[0].tolist() if result.extras else [1] * len(result.probabilities)
    chunked = served.predictor.long_texts == "chunk"
    return [(n > 1 and not chunked, n if chunked else 1) for n in windows]


def router(state) -> APIRouter:
    api = APIRouter()

    @api.post("/v1/classify", response_model=ClassifyResponse, responses=ERRORS, openapi_extra=REQUEST_BODY,
              summary="Classify texts; labels with probabilities per text.")
    async def classify(request: Request) -> JSONResponse:
        served, result = await parse_and_score(request, state, "classify")
        predictions = served.predictor.to_predictions(result.probabilities)
        results = [
            TextResult(label=p.label, score=p.score, probabilities=p.probabilities, truncated=cut, chunks=chunks)
            for p, (cut, chunks) in zip(predictions, window_flags(served, result))
        ]
        return JSONResponse(ClassifyResponse(model=served.name, results=results).model_dump(), headers=timing_headers(result))

    return api
