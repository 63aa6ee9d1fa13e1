"""`POST /v1/entities`: entity spans with character offsets and scores, per text."""

from __future__ import annotations

from functools import partial

from pydantic import BaseModel, Field

from tuneforge.serve.routes.common import text_route


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


def _results(predictions, flags) -> list[EntitiesResult]:
    return [EntitiesResult(entities=[EntitySpan(**vars(e)) for e in p.entities], truncated=cut) for p, (cut, _) in zip(predictions, flags)]


router = partial(
    text_route,
    task="entities",
    path="/v1/entities",
    response=EntitiesResponse,
    results=_results,
    summary="Find entities in texts; spans with character offsets.",
)
