"""What one running service holds: settings, metrics, the served models, API key digests, draining flag."""

from __future__ import annotations

from dataclasses import dataclass, field

from tuneforge.serve.metrics import ServiceMetrics
from tuneforge.serve.settings import ServeSettings


@dataclass
class ServiceState:
    settings: ServeSettings
    metrics: ServiceMetrics
    models: dict = field(default_factory=dict)  # name -> ServedModel
    key_digests: list[bytes] = field(default_factory=list)
    draining: bool = False
