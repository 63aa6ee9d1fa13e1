"""HTTP service: FastAPI app, micro-batching, limits, auth and metrics."""
