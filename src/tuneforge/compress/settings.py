"""Compression settings (`--set compress.KEY=VALUE`), validated like the run config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from tuneforge.config import load_section


class CompressSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accuracy_budget: float = Field(
        0.5, ge=0, le=100, description="Accuracy points (answer-F1 points for chat runs) the recommended variant may lose."
    )
    student_layers: int | None = Field(None, ge=1, description="Layers of the distilled student; default half the teacher's.")
    epochs: float = Field(3.0, gt=0, le=100, description="Distillation epochs over the run's training split.")
    recover_epochs: float = Field(1.0, ge=0, le=100, description="Distillation epochs that let a pruned model recover (0: none).")
    learning_rate: float = Field(1e-4, gt=0, lt=1, description="Peak learning rate of distillation and recovery.")
    batch_size: int = Field(16, ge=1, le=4096, description="Training batch size of distillation and recovery.")
    temperature: float = Field(2.0, gt=0, le=100, description="Softmax temperature of the teacher's targets.")
    alpha: float = Field(0.5, ge=0, le=1, description="Weight of the teacher's soft targets; the rest goes to the true labels.")
    head_fraction: float = Field(0.5, gt=0, lt=1, description="Share of attention heads prune-heads removes (least important first).")
    sparsity: float = Field(0.5, gt=0, lt=1, description="Share of encoder weights prune-magnitude sets to zero.")
    importance_texts: int = Field(512, ge=1, description="Training texts used to score head importance.")
    latency_texts: int = Field(100, ge=1, description="Texts timed one by one for the batch-1 latency.")
    seed: int = Field(0, description="Seed of distillation and recovery training.")
    chat_queries: int | None = Field(
        None, ge=1, description="Chat runs: answer only the first N held-out queries per variant (default all)."
    )


def load_compress_settings(overrides: list[str] | None = None, **values) -> CompressSettings:
    """Settings from `compress.KEY=VALUE` overrides; keyword `values` (CLI options) are applied first."""
    return load_section(
        CompressSettings, "compress", [*(f"compress.{k}={v}" for k, v in values.items() if v is not None), *(overrides or [])]
    )
