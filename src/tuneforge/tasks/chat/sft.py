"""LoRA SFT of the generator on the company's own Q/A pairs or dialogues (trl's `SFTTrainer`).

Examples are shaped like the prompts the bot builds at answer time: the system
prompt with the pair itself as passage [1], the question, and the answer (citing
[1]) as the completion, so the loss falls on the answer only and the adapter learns
to answer from a passage and cite it. Dialogues (a `messages` column) train on their
last assistant turn. The adapter is saved under `model/adapter/`, pointing at the
generator by its configured name, so the run loads on any machine that has that model.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

import pandas as pd

from tuneforge.errors import DataError, MissingDependencyError
from tuneforge.tasks.chat.generation import SYSTEM_PROMPT, check_messages

logger = logging.getLogger(__name__)


def pair_example(question: str, answer: str) -> dict:
    system = f"{SYSTEM_PROMPT}\n\nPassages:\n[1] Q: {question}\nA: {answer}"
    return {
        "prompt": [{"role": "system", "content": system}, {"role": "user", "content": question}],
        "completion": [{"role": "assistant", "content": f"{answer} [1]"}],
    }


def dialogue_example(messages, where: str) -> dict:
    try:
        messages = json.loads(messages) if isinstance(messages, str) else messages
        if not isinstance(messages, list) or len(messages) < 2 or messages[-1].get("role") != "assistant":
            raise ValueError("it must end with an assistant message")
        check_messages(messages[:-1])
    except (ValueError, AttributeError, TypeError) as exc:
        raise DataError(f"{where}: column 'messages' is not a dialogue ({exc})") from None
    return {"prompt": messages[:-1], "completion": [messages[-1]]}


def sft_examples(chat, faq: pd.DataFrame, *, seed: int) -> list[dict]:
    spec = chat.fine_tune.data
    if spec is None:
        frame = faq
        if not len(frame):
            raise DataError("chat.fine_tune: there are no FAQ pairs to fine-tune on; give chat.fine_tune.data")
    else:
        from tuneforge.tasks.chat.knowledge import read_faq

        frame = _read_dialogues(spec) if _has_messages(spec) else read_faq(spec, chat)
    if chat.fine_tune.max_examples is not None and len(frame) > chat.fine_tune.max_examples:
        frame = frame.sample(chat.fine_tune.max_examples, random_state=seed)
    if "messages" in frame:
        return [dialogue_example(m, s) for m, s in zip(frame["messages"], frame["source"])]
    return [pair_example(q, a) for q, a in zip(frame["text"], frame["label"])]


def _has_messages(spec: str) -> bool:
    return spec.endswith(".jsonl") and '"messages"' in Path(spec).read_text(encoding="utf-8")[:10_000]


def _read_dialogues(spec: str) -> pd.DataFrame:
    """JSON lines with a `messages` list each (the table reader wants text cells, these are lists)."""
    rows = []
    for number, line in enumerate(Path(spec).read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{spec}:{number}: not JSON ({exc.msg})") from None
            rows.append({"messages": record.get("messages") if isinstance(record, dict) else None, "source": f"{spec}:{number}"})
    return pd.DataFrame(rows, columns=["messages", "source"])


def fine_tune_generator(ctx, faq: pd.DataFrame, out_dir: Path) -> dict:
    """Train a LoRA adapter on the generator; writes it to `out_dir`; returns what happened."""
    try:
        from datasets import Dataset
        from peft import LoraConfig
        from trl import SFTConfig, SFTTrainer
    except ImportError as exc:
        raise MissingDependencyError(f"chat.fine_tune needs trl and datasets ({exc.name}): pip install 'tuneforge[chat]'") from None
    from tuneforge.models.causal import load_causal_lm

    chat, seed = ctx.config.chat, ctx.config.train.seed
    ft = chat.fine_tune
    if chat.generator == "none":
        raise DataError("chat.fine_tune.enabled needs a generator (chat.generator is 'none')")
    examples = sft_examples(chat, faq, seed=seed)
    model, tokenizer = load_causal_lm(chat.generator)
    model.train()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tuneforge-sft-") as scratch:
        args = SFTConfig(
            output_dir=scratch,
            max_steps=ft.steps,
            per_device_train_batch_size=ft.batch_size,
            learning_rate=ft.learning_rate,
            max_length=ft.max_length,
            bf16=False,  # CPU
            fp16=False,
            gradient_checkpointing=False,
            use_cpu=True,
            save_strategy="no",
            report_to="none",
            logging_steps=max(1, ft.steps // 10),
            seed=seed,
            disable_tqdm=True,
        )
        peft_config = LoraConfig(r=ft.lora_r, lora_alpha=ft.lora_alpha, lora_dropout=0.05, task_type="CAUSAL_LM")
        trainer = SFTTrainer(
            model=model, args=args, train_dataset=Dataset.from_list(examples), processing_class=tokenizer, peft_config=peft_config
        )
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # its log dicts would go to stdout, whose last line is the run folder
        result = trainer.train()
        out_dir.mkdir(parents=True, exist_ok=True)
        trainer.model.save_pretrained(out_dir, safe_serialization=True)
        tokenizer.save_pretrained(out_dir)
    config_path = out_dir / "adapter_config.json"
    adapter_config = json.loads(config_path.read_text(encoding="utf-8"))
    adapter_config["base_model_name_or_path"] = chat.generator  # the name, resolved again wherever the run is loaded
    config_path.write_text(json.dumps(adapter_config, indent=2), encoding="utf-8")
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    info = {
        "examples": len(examples),
        "steps": ft.steps,
        "seconds": round(time.perf_counter() - started, 2),
        "first_loss": round(losses[0], 4) if losses else None,
        "final_loss": round(losses[-1], 4) if losses else None,
        "train_loss": round(float(result.training_loss), 4),
    }
    logger.info("generator fine-tuned: %s", info)
    return info
