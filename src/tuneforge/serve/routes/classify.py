"""`POST /v1/classify`: one label per text, with the probability of every label."""

from __future__ import annotations

from functools import partial

from pydantic import BaseModel, Field

from tuneforge.serve.routes import explain
from tuneforge.serve.routes.common import text_route


class TextResult(BaseModel):
    label: str
    score: float
    probabilities: dict[str, float]
    truncated: bool = Field(description="The text was longer than the model window and was cut (serve.long_texts=truncate).")
    chunks: int = Field(1, description="Model windows scored and averaged for this text (more than 1 with serve.long_texts=chunk).")


class ClassifyResponse(BaseModel):
    model: str
    results: list[TextResult]


def _results(predictions, flags) -> list[TextResult]:
    return [
        TextResult(label=p.label, score=p.score, probabilities=p.probabilities, truncated=cut, chunks=chunks)
        for p, (cut, chunks) in zip(predictions, flags)
    ]


_classify = partial(
    text_route,
    task="classify",
    path="/v1/classify",
    response=ClassifyResponse,
    results=_results,
    summary="Classify texts; labels with probabilities per text.",
)


def router(state):
    """`POST /v1/classify` and its companion `POST /v1/explain`."""
    api = _classify(state)
    api.include_router(explain.router(state))
    return api
