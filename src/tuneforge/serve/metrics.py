"""Prometheus metrics of one service instance (its own registry, so tests can build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "tuneforge_requests_total", "HTTP requests by route, status and error type", ["route", "status", "error_type"], registry=r
        )
        self.request_seconds = Histogram("tuneforge_request_seconds", "Total request time", ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_seconds = Histogram(
            "tuneforge_queue_seconds", "Time a request waited for its batch", ["model"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.inference_seconds = Histogram(
            "tuneforge_inference_seconds", "Forward-pass time of a batch", ["model"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.batch_size = Histogram("tuneforge_batch_size", "Texts per executed batch", ["model"], buckets=BATCH_BUCKETS, registry=r)
        self.queue_depth = Gauge("tuneforge_queue_depth", "Texts waiting or running", ["model"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
