"""`task: lm` — domain pre-training on raw text: masked LM of an encoder, or causal LM of a generator.

The run goes through the shared engine (run folder, splits, checkpoints and
resume, cost, card, report); the engine's language-model loop
(`engine/pretrain.py`) trains it. There are no labels: documents are cleaned and
split like any other rows, packed into blocks, and the held-out loss and
perplexity are measured before and after training. A masked-LM run is a
starting point for `train` (`model.name: RUN_DIR`); a causal-LM run is a
generator for the chat bot. Neither is served or predicted with directly.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from tuneforge.atomic import atomic_write_json
from tuneforge.data.corpus import read_corpus
from tuneforge.errors import ConfigError
from tuneforge.plots import save_bars_png
from tuneforge.tasks.base import Task

logger = logging.getLogger(__name__)
KINDS = {"mlm": "masked-lm", "clm": "causal-lm"}


def _no_labels(what: str) -> ConfigError:
    return ConfigError(f"task lm learns from raw text and has no {what}; use `tuneforge train` with model.name: RUN_DIR to fine-tune it")


class LanguageModelTask(Task):
    name: ClassVar[str] = "lm"
    methods: ClassVar[tuple[str, ...]] = ("full", "lora")
    route: ClassVar[str] = ""  # not served
    serves_texts: ClassVar[bool] = False
    chunkable: ClassVar[bool] = False
    training_loop: ClassVar[str] = "language-model"

    # -- engine hooks ---------------------------------------------------------------------------

    def needs_pretrained(self, config) -> bool:
        """Masked LM: the engine resolves the encoder (`model.name`); causal LMs are loaded by `models.causal`."""
        return config.pretrain.objective == "mlm"

    def check(self, config) -> None:
        if config.pretrain.objective == "mlm" and config.train.method == "lora":
            raise ConfigError("invalid config:\n  train.method: pretrain.objective mlm trains method full (lora applies to clm)")

    def prepare(self, config, *, seed: int):
        from tuneforge.data.prepare import prepare_data

        self.check(config)
        return prepare_data(config.data, seed=seed, task=self, read=read_corpus)

    def load_runtime(self, path, *, batch_size: int = 32, variant: str | None = None):  # no compressed variants
        from tuneforge.tasks.lm.runtime import LanguageModel

        return LanguageModel.load(path, batch_size=batch_size)

    def load_eval_frame(self, path, config, runtime) -> pd.DataFrame:
        from tuneforge.data.prepare import load_clean

        data = config.data.model_copy(update={"format": "auto"})
        frame, _ = load_clean(str(path), data, self, runtime.meta.transforms, read=read_corpus)
        return frame

    def validation_key(self, config) -> str:
        return "best_validation_perplexity"

    def unservable(self, meta) -> str | None:
        if meta.extra.get("objective") == "clm":
            return (
                "this is a causal-LM pre-training run (task lm): it generates text as the chat bot's generator, "
                "it is not served or predicted with directly"
            )
        return (
            "this is a masked-LM pre-training run (task lm): it has no task head to predict with; "
            "fine-tune it with `tuneforge train` and model.name: <this run>"
        )

    # -- data schema: documents, no labels ------------------------------------------------------

    def parse_label(self, raw: Any, *, text: str, where: str, data) -> Any:
        return None  # every document is a training row; a label column, if any, is not read

    def label_names(self, frame: pd.DataFrame) -> list[str]:
        return []

    def check_trainable(self, labels: list[str], *, origin: str, label_column: str) -> None:
        return None

    def row_labels(self, target: Any) -> list[str]:
        return []

    # -- parts of the protocol a label-free task has no use for ---------------------------------

    def encode(self, tokenizer, frame: pd.DataFrame, labels: list[str], *, max_length: int):
        raise _no_labels("supervised encoding")

    def validation_scores(self, targets: np.ndarray, logits: np.ndarray) -> dict[str, float]:
        raise _no_labels("classification scores")

    def predictions(self, raw: Any, meta) -> list:
        raise _no_labels("predictions")

    def scoring_columns(self, raw: Any, meta) -> dict[str, list]:
        raise _no_labels("prediction columns")

    # -- evaluation ------------------------------------------------------------------------------

    def evaluate(self, runtime, frame: pd.DataFrame, out_dir: Path, *, split: str) -> dict:
        """Held-out loss and perplexity of the trained model on `frame`, beside the base model's on the same blocks."""
        after = runtime.held_out(frame["text"].tolist(), progress=f"held-out loss ({split})")
        settings = runtime.settings
        metrics: dict = {
            "task": self.name,
            "objective": settings.objective,
            "method": runtime.meta.method,
            "split": split,
            "n": len(frame),
            "blocks": after["blocks"],
            "tokens": after["tokens"],
            "loss": after["loss"],
            "perplexity": after["perplexity"],
        }
        before = runtime.meta.extra.get("held_out_before") or {}
        if before.get("tokens") == after["tokens"] and before.get("blocks") == after["blocks"] and before.get("split") == split:
            metrics.update(loss_before=before["loss"], perplexity_before=before["perplexity"])
            metrics["perplexity_change"] = round(after["perplexity"] / before["perplexity"] - 1, 6)
            metrics["before"] = f"the base model {runtime.meta.base_model!r} on the same blocks{_mask_note(settings)}"
        else:
            metrics["before"] = "not measured on this data (the base model was scored on the run's own held-out split)"
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out_dir / "metrics.json", metrics)
        if "perplexity_before" in metrics and all(math.isfinite(metrics[k]) for k in ("perplexity", "perplexity_before")):
            save_bars_png(
                {"before": metrics["perplexity_before"], "after": metrics["perplexity"]},
                out_dir / "perplexity.png",
                title=f"Held-out perplexity ({split}, {metrics['tokens']} scored tokens)",
                xlabel="perplexity (lower is better)",
            )
        return metrics

    def headline(self, metrics: dict) -> dict[str, float]:
        keys = ("perplexity", "loss", "perplexity_before", "loss_before")
        return {k: metrics[k] for k in keys if k in metrics}

    # -- model card -------------------------------------------------------------------------------

    def card_model(self, config: dict, data_report: dict, train_info: dict) -> str:
        p, t = config["pretrain"], config["train"]
        objective = p["objective"]
        if objective == "mlm":
            what = f"masked LM, {p['mask_probability']:.0%} of tokens masked" + (", whole words" if p["whole_word_mask"] else "")
            use = "fine-tune it with `tuneforge train` and `model.name: <this run>` (the encoder is loaded, the masked-LM head left out)"
        else:
            what = "causal LM (next-token prediction)"
            use = "use it as the chat bot's generator (a run folder is accepted wherever a generator is named)"
        head = train_info.get("mlm_head")
        saved = "a LoRA adapter over the base model" if train_info.get("adapter") else "the full model"
        return (
            f"- Task: `lm` — domain pre-training, {what}\n"
            f"- Method: `{t['method']}` on base model `{config['model']['name']}`; saved: {saved}\n"
            f"- Blocks of {p['block_size']} tokens ({'documents packed together' if p['pack'] else 'one document per block, truncated'})\n"
            + (f"- Masked-LM head: {head}\n" if head else "")
            + f"- Use: {use}"
        )

    def card_results(self, metrics: dict) -> str:
        lines = [f"## Results on {metrics.get('split')} ({metrics.get('n')} documents, {metrics.get('tokens')} scored tokens)"]
        lines += ["| | loss | perplexity |", "|---|---|---|"]
        if "loss_before" in metrics:
            lines.append(f"| before (base model) | {metrics['loss_before']:.4f} | {metrics['perplexity_before']:.2f} |")
        lines.append(f"| after | {metrics['loss']:.4f} | {metrics['perplexity']:.2f} |")
        lines.append(f"\n- Before: {metrics.get('before')}")
        lines.append(
            "\n## Limitations\n- Perplexity measures fit to this kind of text, not usefulness; judge the gain by the downstream task "
            "(`benchmarks/pretrain_gain.py`).\n- Masked-LM perplexities depend on which tokens are masked: compare only figures measured on the same blocks."
        )
        return "\n".join(lines) + "\n"


def _mask_note(settings) -> str:
    return " with the same masked positions" if settings.objective == "mlm" else ""
