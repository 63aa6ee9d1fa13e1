"""`POST /v1/recommend` and `POST /v1/similar`: ranked items for a user or a session, and items like an item.

Requests are checked against the model (known items, known filter attributes)
before they are queued, so the batch function never fails on client input.
Queries queued together are scored in one sparse-dense product. A user id the
model has never seen is a new user: they get the popular items of their
segment (or overall), and the answer says `known_user: false`.
"""

from __future__ import annotations

import copy

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from tuneforge.errors import ConfigError, DataError
from tuneforge.serve.errors import ApiError
from tuneforge.serve.requests import authorize, parse_body, pick_model, queue_and_wait, timing_headers
from tuneforge.serve.routes.common import TIMING_HEADERS, WholeNumber, post_json
from tuneforge.tasks.recommend.runtime import Query

MAX_K = 1000
MAX_ITEMS = 1000
MAX_FILTERS = 8
MAX_ID_CHARS = 200


class RecommendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: StrictStr | None = Field(None, max_length=MAX_ID_CHARS, description="User id; an unknown id is a new user (popular items).")
    items: list[StrictStr] | None = Field(
        None, max_length=MAX_ITEMS, description="Recent item ids, oldest first: an anonymous session, or added to the user's past."
    )
    segment: dict[str, StrictStr] | None = Field(
        None,
        max_length=MAX_FILTERS,
        description='A new user\'s user-table columns, e.g. {"gender": "F", "age_group": "25-34"}: their segment\'s favourites.',
    )
    k: WholeNumber = Field(10, ge=1, le=MAX_K, description="How many items.")
    exclude_seen: StrictBool = Field(True, description="Leave out items the user (or session) already has.")
    filters: dict[str, StrictStr] | None = Field(
        None,
        max_length=MAX_FILTERS,
        description='Only items whose attribute equals the value or has it as a word, e.g. {"genres": "Comedy"}.',
    )
    model: StrictStr | None = Field(None, description="Served recommend model; the first one when omitted.")


class SimilarRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item: StrictStr = Field(max_length=MAX_ID_CHARS, description="Item id.")
    k: WholeNumber = Field(10, ge=1, le=MAX_K, description="How many items.")
    filters: dict[str, StrictStr] | None = Field(None, max_length=MAX_FILTERS, description="As for /v1/recommend.")
    model: StrictStr | None = Field(None, description="Served recommend model; the first one when omitted.")


class RankedItem(BaseModel):
    item: str
    score: float
    attributes: dict = Field(description="The item's columns from the item table (title, genres...).")


class RecommendResponse(BaseModel):
    model: str
    known_user: bool = Field(description="False when the user id is new to the model (or absent): cold-start answer.")
    items: list[RankedItem]


class SimilarResponse(BaseModel):
    model: str
    items: list[RankedItem]


def _body_schema(model: type[BaseModel], *, one_of_required: list[str] | None = None) -> dict:
    schema = copy.deepcopy(model.model_json_schema())
    for name in ("user", "items"):
        prop = schema["properties"].get(name)
        if prop and one_of_required:  # present means given: null is not a user
            prop.pop("anyOf", None)
            prop.pop("default", None)
            prop.update(
                {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS}
                if name == "user"
                else {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": MAX_ITEMS}
            )
    if one_of_required:
        schema["anyOf"] = [{"required": [name]} for name in one_of_required]
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _checked(call):
    """Model-level problems in a request (unknown item or attribute) are the client's: 422 naming the field."""
    try:
        return call()
    except (DataError, ConfigError) as exc:
        raise ApiError(422, str(exc), "invalid_request") from None


def _items(recommender, ranked) -> list[RankedItem]:
    return [RankedItem(item=i, score=s, attributes=recommender.describe_item(i)) for i, s in ranked]


def router(state) -> APIRouter:
    api = APIRouter()

    @post_json(
        api,
        state,
        "/v1/recommend",
        response=RecommendResponse,
        body=_body_schema(RecommendRequest, one_of_required=["user", "items"]),
        summary="Top-k items for a user id or a list of recent items, optionally filtered by item attribute.",
        name="recommend",
        answer="Ranked items, best first.",
        headers=TIMING_HEADERS,
    )
    async def recommend(request: Request) -> JSONResponse:
        authorize(request, state)
        payload = parse_body(await request.body(), RecommendRequest)
        if payload.user is None and not payload.items:
            raise ApiError(422, "body: give a user id, recent items, or both", "invalid_request")
        served = pick_model(payload.model, state, "recommend")
        rec = served.predictor
        history, segment, known = _checked(lambda: rec.query(user=payload.user, items=payload.items, segment=payload.segment))
        mask = _checked(lambda: rec.item_mask(payload.filters))
        query = Query(history=history, segment=segment, k=payload.k, exclude=history if payload.exclude_seen else None, mask=mask)
        result = await queue_and_wait(served, state, [query])
        body = RecommendResponse(model=served.name, known_user=known, items=_items(rec, result.probabilities[0]))
        return JSONResponse(body.model_dump(), headers=timing_headers(result))

    @post_json(
        api,
        state,
        "/v1/similar",
        response=SimilarResponse,
        body=_body_schema(SimilarRequest),
        summary="Items similar to an item (content vectors, else item factors).",
        name="similar",
        answer="Items most like the given one, best first.",
        headers=TIMING_HEADERS,
    )
    async def similar(request: Request) -> JSONResponse:
        authorize(request, state)
        payload = parse_body(await request.body(), SimilarRequest)
        served = pick_model(payload.model, state, "recommend")
        rec = served.predictor
        index = int(_checked(lambda: rec.resolve_items([payload.item], field_name="item"))[0])
        _checked(rec.item_vectors)  # a popularity model has no similarity: say so before queueing
        query = Query(
            history=np.zeros(0, np.int64),
            segment=-1,
            k=payload.k,
            exclude=None,
            mask=_checked(lambda: rec.item_mask(payload.filters)),
            similar_to=index,
        )
        result = await queue_and_wait(served, state, [query])
        return JSONResponse(
            SimilarResponse(model=served.name, items=_items(rec, result.probabilities[0])).model_dump(), headers=timing_headers(result)
        )

    return api
