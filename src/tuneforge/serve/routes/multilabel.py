"""`POST /v1/multilabel`: every label whose score passes its threshold, per text."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from tuneforge.serve.requests import parse_and_score, timing_headers
from tuneforge.serve.routes.classify import window_flags
from tuneforge.serve.routes.common import ERRORS, REQUEST_BODY


class LabelScore(BaseModel):
    label: str
    score: float


class MultiLabelResult(BaseModel):
    labels: list[LabelScore] = Field(description="Labels above their decision threshold, highest score first (may be empty).")
    scores: dict[str, float] = Field(description="Score of every label.")
    truncated: bool
    chunks: int = 1


class MultiLabelResponse(BaseModel):
    model: str
    results: list[MultiLabelResult]


def router(state) -> APIRouter:
    api = APIRouter()

    @api.post("/v1/multilabel", response_model=MultiLabelResponse, responses=ERRORS, openapi_extra=REQUEST_BODY,
              summary="Tag texts with zero or more labels; every label's score.")
    async def multilabel(request: Request) -> JSONResponse:
        served, result = await parse_and_score(request, state, "multilabel")
        predictions = served.predictor.to_predictions(result.probabilities)
        results = [
            MultiLabelResult(labels=[LabelScore(label=x, score=p.scores[x]) for x in p.labels], scores=p.scores, truncated=cut, chunks=chunks)
            for p, (cut, chunks) in zip(predictions, window_flags(served, result))
        ]
        return JSONResponse(MultiLabelResponse(model=served.name, results=results).model_dump(), headers=timing_headers(result))

    return api
