"""One APIRouter per task; the app mounts every one, so the OpenAPI document lists them all."""

from __future__ import annotations

from tuneforge.serve.routes import classify, entities, multilabel

ROUTERS = {"classify": classify.router, "multilabel": multilabel.router, "entities": entities.router}
