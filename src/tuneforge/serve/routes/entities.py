"""`POST /v1/entities`: entity spans with character offsets and scores, per text."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from tuneforge.serve.requests import parse_and_score, timing_headers
from tuneforge.serve.routes.classify import window_flags
from tuneforge.serve.routes.common import ERRORS, REQUEST_BODY


class EntitySpan(BaseModel):
    label: str
    start: int = Field(description="Offset of the first character in the submitted text.")
    end: int = Field(description="Offset just past the last character (text[start:end] is the entity).")
    text: str
    score: float = Field(description="Mean probability of the span's tags.")


class EntitiesResult(BaseModel):
    entities: list[EntitySpan]
    truncated: bool = Field(description="The text was longer than the model window; entities past it were not looked for.")


class EntitiesResponse(BaseModel):
    model: str
    results: list[EntitiesResult]


def router(state) -> APIRouter:
    api = APIRouter()

    @api.post("/v1/entities", response_model=EntitiesResponse, responses=ERRORS, openapi_extra=REQUEST_BODY,
              summary="Find entities in texts; spans with character offsets.")
    async def entities(request: Request) -> JSONResponse:
        served, result = await parse_and_score(request, state, "entities")
        predictions = served.predictor.to_predictions(result.probabilities)
        results = [
            EntitiesResult(entities=[EntitySpan(**e.__dict__) for e in p.entities], truncated=cut)
            for p, (cut, _) in zip(predictions, window_flags(served, result))
        ]
        return JSONResponse(EntitiesResponse(model=served.name, results=results).model_dump(), headers=timing_headers(result))

    return api
