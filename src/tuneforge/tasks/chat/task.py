"""`task: chat` — a customer-service bot: FAQ and documents retrieved by sentence embeddings, a generator
that answers from them and cites them, and a handoff to a person below a similarity chosen on validation.

Not a text-classification task, so it implements the hooks the engine, the card and
the report call (`method_of`, `prepare`, `trainer`, `load_runtime`, `evaluate`,
`headline`, the card) like `recommend` does. In the run: the knowledge base is the
`train` split (FAQ pairs and documents, as read), the evaluation queries are the
`validation` (threshold choice) and `test` splits; `model/` holds the index, the
thresholds and the optional generator adapter.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar

import pandas as pd

from tuneforge.atomic import atomic_file, atomic_write_json
from tuneforge.data.prepare import PreparedData
from tuneforge.errors import ConfigError, DataError
from tuneforge.tasks.lineage_hooks import LineageHooks

logger = logging.getLogger(__name__)
KINDS = ("faq", "document", "out_of_scope")
HEADLINE = ("hit@1", "hit@5", "mrr", "token_f1", "rouge_l", "groundedness", "handoff_precision", "handoff_recall", "handoff_f1")


class ChatTask(LineageHooks):
    name: ClassVar[str] = "chat"
    methods: ClassVar[tuple[str, ...]] = ("retrieval", "lora-sft")
    route: ClassVar[str] = "/v1/chat/completions"
    serves_texts: ClassVar[bool] = False
    method_setting: ClassVar[str] = "chat.fine_tune.enabled"
    compressible: ClassVar[bool] = False
    explainable: ClassVar[bool] = False
    slice_columns: ClassVar[tuple[str, ...]] = ()  # the report shows no slice table for chat runs
    keeps_raw_text: ClassVar[bool] = True
    generates: ClassVar[bool] = True  # served a few answers at a time (serve.max_generations), not micro-batched

    # -- engine hooks -------------------------------------------------------------------------

    def method_of(self, config) -> str:
        return "lora-sft" if config.chat.fine_tune.enabled else "retrieval"

    def needs_pretrained(self, config) -> bool:
        return True  # the retrieval encoder (model.name)

    def row_keys(self, frame: pd.DataFrame) -> list[str]:
        return [t if isinstance(t, str) else "" for t in frame["text"]]

    def saved_split_columns(self) -> dict:
        raise ConfigError("forgetting rows of a chat run: remove the entries with ChatBot.remove, or rebuild from the source data")

    def evaluation_options(self, config) -> dict:
        return {}

    def validation_key(self, config) -> str:
        return "best_validation_handoff_f1"

    def prepare(self, config, *, seed: int) -> PreparedData:
        from tuneforge.tasks.chat.knowledge import is_document_source, read_documents, read_faq

        chat, data = config.chat, config.data
        parts, report = [], {"seed": seed, "task": self.name, "transforms": [], "labels": [], "source": data.train}
        if is_document_source(data.train):
            document_specs = [data.train, *([chat.documents] if chat.documents else [])]
        else:
            faq = read_faq(data.train, chat, encoding=data.encoding).assign(kind="faq")
            report["faq_pairs"] = len(faq)
            parts.append(faq)
            document_specs = [chat.documents] if chat.documents else []
        queries = self._queries(config, seed=seed)
        asked = _document_sources(queries)
        include = {*chat.include_documents, *asked}
        documents = [d for spec in document_specs for d in read_documents(spec, max_documents=chat.max_documents, include=include)]
        read = {source for source, _ in documents}
        missing = [s for s in chat.include_documents if s not in read]
        if missing:
            raise ConfigError(f"chat.include_documents: {missing[0]!r} is not among the documents ({', '.join(document_specs) or 'none'})")
        unknown = sorted(s for s in asked if s not in read and not (len(parts) and s in set(parts[0]["source"])))
        if unknown:
            logger.warning(
                "%d expected source(s) of the evaluation queries are not in the knowledge base: e.g. %s", len(unknown), unknown[:3]
            )
            report["expected_sources_not_in_knowledge_base"] = len(unknown)
        if documents:
            parts.append(
                pd.DataFrame(
                    {
                        "text": [t for _, t in documents],
                        "label": None,
                        "category": None,
                        "source": [s for s, _ in documents],
                        "kind": "document",
                    }
                )
            )
        report["documents"] = len(documents)
        kb = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["text", "label", "category", "source", "kind"])
        if not len(kb):
            raise DataError(f"the knowledge base is empty: {data.train} holds no FAQ rows and chat.documents gives no documents")
        splits = {name: queries[queries["split"] == name].reset_index(drop=True) for name in ("validation", "test")}
        report["rows_read"] = len(kb)
        report["files"] = {"train": {"source": data.train, "removed": {}}}
        report["splits"] = {
            "train": {"rows": len(kb), "origin": "knowledge base (FAQ pairs and documents)"},
            **{name: {"rows": len(f), "origin": f"evaluation queries {chat.eval_queries}"} for name, f in splits.items()},
        }
        report["query_kinds"] = {name: f["kind"].value_counts().to_dict() for name, f in splits.items()}
        return PreparedData(
            train=kb, validation=splits["validation"], test=splits["test"] if len(splits["test"]) else None, labels=[], report=report
        )

    def _queries(self, config, *, seed: int) -> pd.DataFrame:
        from tuneforge.tasks.chat.queries import read_queries

        return read_queries(config.chat.eval_queries, config.chat, encoding=config.data.encoding, seed=seed)

    def trainer(self, method: str):
        from tuneforge.tasks.chat.build import build_chatbot

        return build_chatbot

    def unservable(self, meta) -> str | None:
        return None  # served at /v1/chat/completions

    def load_runtime(self, path, *, batch_size: int = 32, variant: str | None = None):
        from tuneforge.tasks.chat.runtime import ChatBot

        return ChatBot.load(path, variant=variant)

    def compressor(self):
        from tuneforge.tasks.chat.compress import compress_chat

        return compress_chat

    def load_eval_frame(self, path, config, runtime) -> pd.DataFrame:
        from tuneforge.tasks.chat.queries import read_queries

        frame = read_queries(str(path), config.chat, encoding=config.data.encoding, seed=config.train.seed, keep_split=False)
        return frame

    def scoring_columns(self, raw, meta) -> dict[str, list]:
        return {"answer": [a.text for a in raw], "mode": [a.mode for a in raw], "handoff": [a.handoff for a in raw]}

    def empty_raw(self, meta) -> list:
        return []

    # -- evaluation ---------------------------------------------------------------------------

    def evaluate(self, bot, frame: pd.DataFrame, out_dir: Path, *, split: str) -> dict:
        import json

        from tuneforge.tasks.chat.evaluation import evaluate_bot

        metrics, records = evaluate_bot(bot, frame, progress=f"answering the {split} queries")
        metrics.update(split=split, task=self.name, method=bot.meta.method, thresholds=bot.meta.extra.get("thresholds", {}))
        metrics["index_backend"] = bot.index.backend
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out_dir / "metrics.json", metrics)
        with atomic_file(out_dir / "answers.jsonl", "w", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self._plot(metrics, out_dir, split)
        return metrics

    @staticmethod
    def _plot(metrics: dict, out_dir: Path, split: str) -> None:
        from tuneforge.plots import save_bars_png

        values = {k: metrics[k] for k in HEADLINE if isinstance(metrics.get(k), float)}
        if values:
            save_bars_png(values, out_dir / "chat_metrics.png", title=f"Chat bot on {split} ({metrics['n']} queries)", xlabel="score")

    def headline(self, metrics: dict) -> dict[str, float]:
        return {
            k: metrics[k] for k in (*HEADLINE, "latency_mean_s", "ttft_mean_s", "tokens_per_s") if isinstance(metrics.get(k), (int, float))
        }

    # -- model card ---------------------------------------------------------------------------

    def card_model(self, config: dict, data_report: dict, train_info: dict) -> str:
        chat = config["chat"]
        tuned = " + LoRA SFT adapter (in the run)" if chat["fine_tune"]["enabled"] else ""
        return (
            f"- Task: `chat` — {data_report.get('faq_pairs', 0)} FAQ pairs, {data_report.get('documents', 0)} documents "
            f"({train_info.get('passages', '?')} passages of {chat['passage_words']} words, {chat['passage_overlap']} overlapping)\n"
            f"- Retrieval: `{config['model']['name']}` sentence embeddings, exact cosine search ({train_info.get('index_backend', '?')}), top {chat['top_k']} passages\n"
            f"- Generator: `{chat['generator']}`{tuned}\n"
            f"- Policy: FAQ answer verbatim from similarity {train_info.get('faq_threshold')} ({train_info.get('faq_chosen_on')}); "
            f"handoff below {train_info.get('handoff_threshold')} ({train_info.get('handoff_chosen_on')})"
        )

    def card_results(self, metrics: dict) -> str:
        fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else ("n/a" if v is None else str(v))  # noqa: E731
        rows = "\n".join(f"| {k} | {fmt(metrics.get(k))} |" for k in (*HEADLINE, "latency_mean_s", "ttft_mean_s", "tokens_per_s"))
        lines = [
            f"## Results on {metrics.get('split')} ({metrics.get('n')} queries; answers: {metrics.get('modes')})",
            "| metric | value |",
            "|---|---|",
            rows,
        ]
        for kind, m in metrics.get("by_kind", {}).items():
            lines.append(
                f"- {kind} ({m['n']} queries): hit@1 {fmt(m.get('hit@1'))}, token F1 {fmt(m.get('token_f1'))}, modes {m.get('modes')}"
            )
        lines.append(
            "\n## Limitations\n- Answers come from the knowledge base and a small generator: check generated answers against their cited "
            "sources; questions outside the knowledge base are handed over, by a threshold chosen on few validation queries."
        )
        return "\n".join(lines) + "\n"


def _document_sources(queries: pd.DataFrame) -> set[str]:
    """Documents the evaluation asks about: a subset (chat.max_documents) always keeps them."""
    out = set()
    for value in queries.get("expected_source", pd.Series(dtype=object)).dropna():
        out |= {s.strip() for s in str(value).split("|") if s.strip() and not s.startswith("bundled:chatterbot-faq")}
    return out
