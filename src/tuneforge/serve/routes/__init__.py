"""One APIRouter per task; the app mounts every one, so the OpenAPI document lists them all."""

from __future__ import annotations

from tuneforge.serve.routes import classify, entities, multilabel
from tuneforge.serve.routes.common import model_choices

ROUTERS = {"classify": classify.router, "multilabel": multilabel.router, "entities": entities.router}


def document_served_models(schema: dict, state) -> dict:
    """Fill each task route's `model` field with the models served now (they load after the app is built)."""
    from tuneforge.tasks import get_task

    for task in ROUTERS:
        body = schema["paths"][get_task(task).route]["post"]["requestBody"]["content"]["application/json"]["schema"]
        body["properties"]["model"] = model_choices(state, task)
    return schema
