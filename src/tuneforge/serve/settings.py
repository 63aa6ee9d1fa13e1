"""Service settings (`--set serve.KEY=VALUE`), validated like the run config."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tuneforge.config import load_section
from tuneforge.serve.connections import default_max_connections


class ServeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="Interface to bind; loopback unless you mean to expose it.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0 picks a free one).")
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Worker processes accepting on the one port, each loading its own copy of the models (`--workers`); "
        "limits are per worker.",
    )
    max_batch_size: int = Field(32, ge=1, le=1024, description="Most texts run in one forward pass.")
    max_wait_ms: float = Field(5.0, ge=0, le=1000, description="How long the batcher waits to fill a batch.")
    max_queue: int = Field(256, ge=1, description="Texts waiting per model before requests get 429.")
    request_timeout_s: float = Field(10.0, gt=0, le=600, description="A request not answered by then gets 504.")
    max_body_bytes: int = Field(2_000_000, ge=1024, description="Larger request bodies get 413 unread.")
    max_texts: int = Field(32, ge=1, le=4096, description="Most texts in one request (422 above).")
    max_chars: int = Field(20_000, ge=1, description="Longest text in characters (422 above).")
    max_generations: int = Field(2, ge=1, le=64, description="Chat: answers generated at once per model (generation is CPU-bound).")
    max_waiting_generations: int = Field(16, ge=0, le=4096, description="Chat: requests waiting for a generation slot before 429.")
    generation_timeout_s: float = Field(
        120.0, gt=0, le=3600, description="Chat: a non-streamed answer not finished by then gets 504 and its generation is stopped."
    )
    drain_seconds: float = Field(10.0, ge=0, le=600, description="On SIGTERM, time allowed for in-flight requests.")
    max_connections: int = Field(
        default_factory=default_max_connections,
        ge=1,
        description="Open connections at most; beyond it the longest-idle one is closed, or the request gets 503 when all are busy. "
        "Default 1000, or half the open-file limit less 64.",
    )
    read_timeout_s: float = Field(
        10.0, gt=0, le=600, description="A request's headers and body must arrive within this; else the connection is closed."
    )
    keep_alive_s: float = Field(5.0, gt=0, le=600, description="An idle kept-alive connection is closed after this.")
    variant: str = Field(
        "auto",
        description="Model variant: auto (recommended if compressed), original, recommended, or a compressed variant (int8, distill-int8, ...).",
    )
    long_texts: Literal["truncate", "chunk"] = Field(
        "truncate", description="Texts over the model window: score the first window, or every window averaged (costs more)."
    )
    threads: int | None = Field(
        None,
        ge=1,
        le=256,
        description="Compute threads per model; default every CPU (with several workers, the CPUs shared out between them). "
        "1 leaves a core to HTTP under heavy load.",
    )
    api_keys_file: str | None = Field(None, description="File of API keys, one per line, plain or 'sha256:<hex>'.")


def load_serve_settings(overrides: list[str] | None = None) -> ServeSettings:
    return load_section(ServeSettings, "serve", overrides)
