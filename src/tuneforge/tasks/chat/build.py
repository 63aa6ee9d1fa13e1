"""Building a chat bot in a run: knowledge base -> embeddings -> index, optional LoRA SFT, thresholds on validation.

The thresholds of the answer policy are chosen on the validation queries from
retrieval scores alone (no generation needed):
- `handoff_threshold` maximises the F1 of handing over on out-of-scope questions
  (hand over when the best similarity is below it);
- `faq_threshold` maximises, over in-scope questions, the share answered correctly by
  the rule "verbatim FAQ answer when the closest FAQ question is at least this similar":
  right when the FAQ entry is an expected source and it answers, or when none is and it
  does not. Ties go to the higher (more careful) value.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from tuneforge.models.artifact import ModelMeta
from tuneforge.retrieval.index import VectorIndex
from tuneforge.tasks.chat.knowledge import build_entries
from tuneforge.tasks.chat.runtime import ADAPTER_DIR, INDEX_DIR, ChatBot, Policy, save_index

logger = logging.getLogger(__name__)
DEFAULT_HANDOFF = 0.35  # used when validation has no out-of-scope questions (logged)
DEFAULT_FAQ = 0.85  # used when validation has no FAQ questions (logged)


def expected_sources(row, faq_sources_by_question: dict[str, set[str]], question_of: dict[str, str]) -> set[str]:
    """The sources a query counts as answered from: its listed ones, plus FAQ pairs sharing the same question."""
    value = row.get("expected_source")
    listed = {s.strip() for s in value.split("|") if s.strip()} if isinstance(value, str) else set()  # None / NaN: none
    out = set(listed)
    for source in listed:
        question = question_of.get(source)
        if question is not None:
            out |= faq_sources_by_question[question]
    return out


def source_maps(bot: ChatBot) -> tuple[dict[str, set[str]], dict[str, str]]:
    by_question: dict[str, set[str]] = {}
    question_of: dict[str, str] = {}
    for entry in bot.entries.values():
        if entry.kind == "faq":
            by_question.setdefault(entry.text.lower(), set()).add(entry.source)
            question_of[entry.source] = entry.text.lower()
    return by_question, question_of


def retrieval_table(bot: ChatBot, frame: pd.DataFrame) -> pd.DataFrame:
    """Per query: best similarity, the closest FAQ entry's own similarity and whether it is expected, ranked sources."""
    maps = source_maps(bot)
    rows = []
    for record in frame.to_dict(orient="records"):
        ranked, alone = bot.retrieve([{"role": "user", "content": record["text"]}])
        expected = expected_sources(record, *maps)
        faq = max(((e, alone[e.id]) for e, _ in ranked if e.kind == "faq" and e.id in alone), key=lambda pair: pair[1], default=None)
        sources = list(dict.fromkeys(e.source for e, _ in ranked))  # each source once, at its best rank
        rows.append(
            {
                "best": ranked[0][1] if ranked else -1.0,
                "faq_score": faq[1] if faq else -1.0,
                "faq_right": bool(faq and faq[0].source in expected),
                "expected": expected,
                "sources": sources,
                "kind": record.get("kind") or "",
            }
        )
    return pd.DataFrame(rows, columns=["best", "faq_score", "faq_right", "expected", "sources", "kind"])


def _candidates(values: np.ndarray) -> np.ndarray:
    points = np.unique(values)
    middles = (points[1:] + points[:-1]) / 2 if len(points) > 1 else np.zeros(0)
    return np.concatenate([[points[0] - 1e-3] if len(points) else [], middles, [points[-1] + 1e-3] if len(points) else []])


def choose_thresholds(table: pd.DataFrame, chat) -> dict:
    """faq_threshold and handoff_threshold (configured values win), with how each was chosen."""
    out_scope = (table["kind"] == "out_of_scope").to_numpy()
    info: dict = {}
    handoff = chat.handoff_threshold
    if handoff is None:
        if out_scope.any() and (~out_scope).any():
            best = table["best"].to_numpy()
            scored = []
            for t in _candidates(best):
                predicted = best < t
                tp = int((predicted & out_scope).sum())
                precision = tp / predicted.sum() if predicted.sum() else 0.0
                recall = tp / out_scope.sum()
                f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
                scored.append((f1, -t, t))
            f1, _, handoff = max(scored)
            info["handoff_validation_f1"] = round(float(f1), 4)
            info["handoff_chosen_on"] = f"validation ({int(out_scope.sum())} out-of-scope of {len(table)} queries)"
        else:
            handoff = DEFAULT_HANDOFF
            info["handoff_chosen_on"] = f"default {DEFAULT_HANDOFF}: validation has no out-of-scope (or no in-scope) questions"
            logger.warning("chat.handoff_threshold: %s", info["handoff_chosen_on"])
    else:
        info["handoff_chosen_on"] = "chat.handoff_threshold"
    faq = chat.faq_threshold
    in_scope = table[~out_scope]
    if faq is None:
        if (in_scope["faq_score"] > -1).any() and in_scope["faq_right"].any():
            scores, right = in_scope["faq_score"].to_numpy(), in_scope["faq_right"].to_numpy()
            scored = [(float(((scores >= t) == right).mean()), t) for t in _candidates(scores)]
            accuracy, faq = max(scored)
            info["faq_validation_accuracy"] = round(accuracy, 4)
            info["faq_chosen_on"] = f"validation ({len(in_scope)} in-scope queries)"
        else:
            faq = DEFAULT_FAQ
            info["faq_chosen_on"] = f"default {DEFAULT_FAQ}: validation has no in-scope question an FAQ entry answers"
            logger.warning("chat.faq_threshold: %s", info["faq_chosen_on"])
    else:
        info["faq_chosen_on"] = "chat.faq_threshold"
    if faq < handoff:
        info["faq_raised_to_handoff"] = True  # a verbatim answer below the handoff line would contradict it
        faq = handoff
    return {"faq_threshold": round(float(faq), 4), "handoff_threshold": round(float(handoff), 4), **info}


def _policy(chat, faq: float, handoff: float) -> Policy:
    return Policy(
        faq_threshold=faq,
        handoff_threshold=handoff,
        top_k=chat.top_k,
        max_history_tokens=chat.max_history_tokens,
        max_new_tokens=chat.max_new_tokens,
        decode_threads=chat.decode_threads,
        max_passage_tokens=chat.max_passage_tokens,
        encoder_max_length=chat.encoder_max_length,
    )


def build_chatbot(ctx, out_dir: Path) -> dict:
    """The engine's trainer hook for `task: chat`: writes the model folder `out_dir`, returns train info."""
    from dataclasses import asdict

    from tuneforge.models.loading import load_encoder, load_tokenizer

    config, chat = ctx.config, ctx.config.chat
    started = time.perf_counter()
    kb = ctx.frame("train")
    faq = kb[kb["kind"] == "faq"]
    documents = [(r["source"], r["text"]) for r in kb[kb["kind"] == "document"].to_dict(orient="records")]
    entries = build_entries(faq if len(faq) else None, documents, chat)
    name = config.model.name
    encoder = load_encoder(ctx.model_path, name=name, remote=config.model.trust_remote_code)
    tokenizer = load_tokenizer(ctx.model_path, name=name, remote=config.model.trust_remote_code)
    meta = ModelMeta(
        kind="chatbot",
        labels=[],
        method=ctx.task.method_of(config),
        base_model=name,
        max_length=chat.encoder_max_length,
        transforms=[],
        task="chat",
        extra={
            "generator": chat.generator,
            "policy": asdict(_policy(chat, 1.0, 0.0)),
            "passages": {"passage_words": chat.passage_words, "passage_overlap": chat.passage_overlap},
        },
    )
    bot = ChatBot(
        encoder=encoder,
        encoder_tokenizer=tokenizer,
        index=VectorIndex(encoder.config.hidden_size),
        entries={},
        policy=_policy(chat, 1.0, 0.0),
        meta=meta,
    )
    logger.info("embedding %d knowledge-base entries (%d FAQ, %d passages)", len(entries), len(faq), len(entries) - len(faq))
    vectors = _embed_entries(bot, [e.text for e in entries])
    bot.index.add([e.id for e in entries], vectors)
    bot.entries = {e.id: e for e in entries}
    embed_seconds = time.perf_counter() - started
    save_index(out_dir / INDEX_DIR, bot.index, bot.entries)
    info: dict = {
        "entries": len(entries),
        "faq_entries": int((np.array([e.kind for e in entries]) == "faq").sum()),
        "passages": sum(e.kind == "passage" for e in entries),
        "index_backend": bot.index.backend,
        "embed_seconds": round(embed_seconds, 2),
    }
    if chat.fine_tune.enabled:
        from tuneforge.tasks.chat.sft import fine_tune_generator

        info["fine_tune"] = fine_tune_generator(ctx, faq, out_dir / ADAPTER_DIR)
    table = retrieval_table(bot, ctx.frame("validation"))
    chosen = choose_thresholds(table, chat)
    meta.extra["policy"] = asdict(_policy(chat, chosen["faq_threshold"], chosen["handoff_threshold"]))
    meta.extra["thresholds"] = chosen
    meta.write(out_dir)
    info.update(chosen)
    info["validation_queries"] = len(table)
    info["best_validation_handoff_f1"] = chosen.get("handoff_validation_f1")
    info["seconds"] = round(time.perf_counter() - started, 2)
    logger.info("thresholds: FAQ verbatim from %.3f, hand over below %.3f", chosen["faq_threshold"], chosen["handoff_threshold"])
    return info


def _embed_entries(bot: ChatBot, texts: list[str]) -> np.ndarray:
    from tuneforge.models.encode import embed_texts

    return embed_texts(
        bot.encoder,
        bot.encoder_tokenizer,
        texts,
        max_length=bot.policy.encoder_max_length,
        batch_size=32,
        pooling="mean",
        progress="embedding the knowledge base",
    )
