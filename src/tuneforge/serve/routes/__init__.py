"""One APIRouter per task; the app mounts every one, so the OpenAPI document lists them all."""

from __future__ import annotations

from tuneforge.serve.routes import chat, classify, entities, explain, multilabel, recommend
from tuneforge.serve.routes.common import model_choices

ROUTERS = {
    "classify": classify.router,
    "multilabel": multilabel.router,
    "entities": entities.router,
    "recommend": recommend.router,
    "chat": chat.router,
}
PATHS = {
    "classify": ("/v1/classify",),
    "recommend": ("/v1/recommend", "/v1/similar"),
    "chat": (chat.PATH,),
}  # a task whose routes are not just `task.route`


def document_served_models(schema: dict, state) -> dict:
    """Fill each task route's `model` field with the models served now (they load after the app is built)."""
    from tuneforge.tasks import get_task

    for task in ROUTERS:
        for path in PATHS.get(task, (get_task(task).route,)):
            body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
            body["properties"]["model"] = model_choices(state, task)
    explain.document_labels(schema, state)  # and its `model` field: every served model that can be explained
    return schema
