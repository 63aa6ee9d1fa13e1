"""`POST /v1/multilabel`: every label whose score passes its threshold, per text."""

from __future__ import annotations

from functools import partial

from pydantic import BaseModel, Field

from tuneforge.serve.routes.common import text_route


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


def _results(predictions, flags) -> list[MultiLabelResult]:
    return [
        MultiLabelResult(labels=[LabelScore(label=x, score=p.scores[x]) for x in p.labels], scores=p.scores, truncated=cut, chunks=chunks)
        for p, (cut, chunks) in zip(predictions, flags)
    ]


router = partial(
    text_route,
    task="multilabel",
    path="/v1/multilabel",
    response=MultiLabelResponse,
    results=_results,
    summary="Tag texts with zero or more labels; every label's score.",
)
