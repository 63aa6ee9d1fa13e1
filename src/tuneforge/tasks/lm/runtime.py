"""A saved pre-trained language model, loaded to be measured: the masked LM with its head, or the causal LM
(a full model, or a LoRA adapter over its base)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tuneforge.models.artifact import ModelMeta
from tuneforge.rundir import find_model_dir
from tuneforge.tasks.lm.blocks import BlockSettings
from tuneforge.tasks.lm.perplexity import held_out_loss, scoring_batch_size


@dataclass
class LanguageModel:
    model: object
    tokenizer: object
    meta: ModelMeta
    model_dir: Path
    batch_size: int = 64  # at most; capped by the block size (perplexity.TOKENS_PER_BATCH)

    @classmethod
    def load(cls, path: str | Path, *, batch_size: int = 64) -> LanguageModel:
        model_dir = find_model_dir(path)
        meta = ModelMeta.read(model_dir)
        if meta.kind == "masked-lm":
            from transformers import AutoModelForMaskedLM, AutoTokenizer

            model = AutoModelForMaskedLM.from_pretrained(model_dir, use_safetensors=True).eval()
            tokenizer = AutoTokenizer.from_pretrained(model_dir)
        else:
            from tuneforge.models.causal import load_causal_lm

            model, tokenizer = load_causal_lm(str(model_dir))
        return cls(model=model, tokenizer=tokenizer, meta=meta, model_dir=model_dir, batch_size=batch_size)

    @property
    def settings(self) -> BlockSettings:
        return BlockSettings(**self.meta.extra["settings"])

    @property
    def labels(self) -> list[str]:
        return []

    def held_out(self, texts: list[str], *, progress: str | None = None) -> dict:
        settings = self.settings
        batch_size = scoring_batch_size(settings, self.batch_size)
        return held_out_loss(self.model, self.tokenizer, texts, settings, batch_size=batch_size, progress=progress)
