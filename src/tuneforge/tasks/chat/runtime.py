"""`ChatBot`: a saved chat run that answers conversations, and `Answer`, what it says.

The answer policy, in order:
1. the last question is close to an FAQ question (cosine >= `faq_threshold`): the FAQ
   answer, verbatim, with its source (`mode: "faq"`);
2. the best entry is at least `handoff_threshold` similar and there is a generator: the
   generator answers from the top-k entries and cites them (`mode: "generated"`);
3. otherwise the bot hands over to a person (`mode: "handoff"`, `handoff: true`, a reason)
   instead of guessing.
Retrieval reads the last question alone and together with the recent conversation
(capped by `max_history_tokens`); an entry's score is the better of the two, except that
an FAQ answer is only returned verbatim for the last question's own similarity.

The model folder: `tuneforge.json` (thresholds, settings, encoder and generator names),
`index/` (`entries.jsonl` + `vectors.safetensors`: reloads without re-embedding) and,
when the generator was fine-tuned, `adapter/` (a PEFT LoRA adapter).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from tuneforge.atomic import atomic_dir, atomic_file
from tuneforge.errors import ConfigError, DataError
from tuneforge.models.artifact import ModelMeta
from tuneforge.retrieval.index import VectorIndex
from tuneforge.rundir import find_model_dir
from tuneforge.tasks.chat.generation import GenerationStats, build_prompt, cap_history, check_messages, stream_generate
from tuneforge.tasks.chat.knowledge import Entry, document_entries

logger = logging.getLogger(__name__)
INDEX_DIR = "index"
ENTRIES_FILE = "entries.jsonl"
ADAPTER_DIR = "adapter"
SNIPPET_CHARS = 300
MAX_TOKENS_LIMIT = 4096
SEARCH_DEPTH = 50  # entries looked at per query before the policy decides


@dataclass
class Answer:
    """One reply. `sources`: what it rests on (the FAQ entry, or the cited passages), best first."""

    text: str
    mode: str  # "faq" | "generated" | "handoff"
    handoff: bool
    reason: str | None = None
    sources: list[dict] = field(default_factory=list)
    usage: dict = field(default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})
    timings: dict = field(default_factory=dict)  # seconds, retrieval_seconds, ttft_seconds, tokens_per_s
    best_score: float | None = None  # similarity of the closest entry (what handoff is decided on)
    finish_reason: str = "stop"  # "length" when generation reached max_tokens

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Policy:
    faq_threshold: float
    handoff_threshold: float
    top_k: int = 3
    max_history_tokens: int = 384
    max_new_tokens: int = 96
    decode_threads: int = 1  # threads after the prompt's prefill (0: all); see ChatConfig.decode_threads
    max_passage_tokens: int = 600
    encoder_max_length: int = 256
    use_faq: bool = True  # answer close FAQ matches verbatim
    use_retrieval: bool = True  # give the generator passages (off: the generator alone, never hands over)


HANDOFF_TEXT = "I'm not able to answer that reliably, so I'm passing you to a member of our team."  # the reason goes to `reason`


class ChatBot:
    """Answers conversations from a knowledge base; `load(run_or_model_dir)`, then `answer` or `stream`."""

    def __init__(
        self, *, encoder, encoder_tokenizer, index: VectorIndex, entries: dict[int, Entry], policy: Policy, meta: ModelMeta, generator=None
    ):
        self.encoder, self.encoder_tokenizer = encoder, encoder_tokenizer
        self.index, self.entries, self.policy, self.meta = index, entries, policy, meta
        self.model, self.tokenizer = generator if generator is not None else (None, None)
        self._lock = threading.Lock()  # add/remove vs. search

    # -- loading and saving ---------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        generator: str | bool | None = True,
        use_adapter: bool = True,
        quantize: str | None = None,
        variant: str | None = None,
        **_,
    ) -> ChatBot:
        """A chat run (or its model folder). `generator`: True the saved one, False none, or another name to load;
        `variant`: original, auto (the one `tuneforge compress` recommended), or a compressed variant such as int8;
        `quantize="int8"`: the generator made faster at load time (about a second; see models/causal_speed.py)."""
        from tuneforge.models.loading import load_encoder, load_tokenizer
        from tuneforge.models.registry import resolve_model

        folder = find_model_dir(path, variant)
        meta = ModelMeta.read(folder)
        if meta.task != "chat":
            raise ConfigError(f"{folder} is a {meta.task} model, not a chat bot")
        extra = meta.extra
        quantize = quantize or extra.get("quantize")
        if extra.get("files_in"):  # a compressed variant is a recipe applied at load time to the original's files
            folder = (folder / extra["files_in"]).resolve()
        index = VectorIndex.load(folder / INDEX_DIR)
        entries = read_entries(folder / INDEX_DIR / ENTRIES_FILE)
        encoder_path = resolve_model(meta.base_model)
        encoder = load_encoder(encoder_path, name=meta.base_model)
        tokenizer = load_tokenizer(encoder_path, name=meta.base_model)
        policy = Policy(**{k: v for k, v in extra["policy"].items() if k in Policy.__dataclass_fields__})
        name = extra.get("generator") if generator is True else generator or None
        loaded = None
        if name and name != "none":
            from tuneforge.models.causal import load_causal_lm

            adapter = folder / ADAPTER_DIR
            source = str(adapter) if generator is True and use_adapter and (adapter / "adapter_config.json").is_file() else name
            loaded = load_causal_lm(source)
            if quantize is not None:
                from tuneforge.models.causal_speed import speed_up

                logger.info("generator made faster at load time: %s", speed_up(loaded[0], quantize))
        return cls(encoder=encoder, encoder_tokenizer=tokenizer, index=index, entries=entries, policy=policy, meta=meta, generator=loaded)

    def save(self, folder: str | Path) -> None:
        """Write the index (entries + vectors) into `folder`/index, replacing the old one whole."""
        save_index(Path(folder) / INDEX_DIR, self.index, self.entries)

    def with_policy(self, **changes) -> ChatBot:
        """The same bot (shared models and index) with other policy settings, e.g. `use_retrieval=False`."""
        bot = ChatBot.__new__(ChatBot)
        bot.__dict__.update(self.__dict__)
        bot.policy = replace(self.policy, **changes)
        return bot

    # -- the knowledge base ---------------------------------------------------------------------

    def embed(self, texts: list[str]) -> np.ndarray:
        from tuneforge.models.encode import embed_texts

        return embed_texts(
            self.encoder, self.encoder_tokenizer, texts, max_length=self.policy.encoder_max_length, batch_size=32, pooling="mean"
        )

    def add_faq(self, pairs: list[dict], *, source: str = "added") -> list[int]:
        """Add FAQ entries ({"question", "answer", "category"?}) without rebuilding; returns their ids."""
        for i, p in enumerate(pairs):
            if not str(p.get("question") or "").strip() or not str(p.get("answer") or "").strip():
                raise DataError(f"add_faq: pair {i} needs a non-empty 'question' and 'answer'")
        start = self._next_id()
        new = [
            Entry(
                id=start + i,
                kind="faq",
                text=p["question"].strip(),
                answer=p["answer"].strip(),
                source=p.get("source") or f"{source}#{start + i}",
                category=p.get("category"),
            )
            for i, p in enumerate(pairs)
        ]
        return self._add(new)

    def add_document(self, source: str, text: str) -> list[int]:
        """Split one document into passages and add them; returns their ids."""
        settings = _PassageSettings(**self.meta.extra["passages"])
        new = document_entries(source, text, settings, first_id=self._next_id())
        if not new:
            raise DataError(f"add_document: {source!r} has no text")
        return self._add(new)

    def remove(self, *, ids: list[int] | None = None, source: str | None = None) -> int:
        """Remove entries by id, or every entry of one source (an FAQ file row, a document); returns how many."""
        with self._lock:
            chosen = set(ids or [])
            if source is not None:
                chosen |= {e.id for e in self.entries.values() if e.source == source}
            removed = self.index.remove(sorted(chosen))
            for i in chosen:
                self.entries.pop(i, None)
            return removed

    def _next_id(self) -> int:
        return max(self.entries, default=-1) + 1

    def _add(self, new: list[Entry]) -> list[int]:
        vectors = self.embed([e.text for e in new])
        with self._lock:
            self.index.add([e.id for e in new], vectors)
            self.entries.update({e.id: e for e in new})
        return [e.id for e in new]

    # -- retrieval ------------------------------------------------------------------------------

    def retrieve(self, messages: list[dict], k: int = SEARCH_DEPTH) -> tuple[list[tuple[Entry, float]], dict[int, float]]:
        """Entries ranked by max(similarity to the question, to the question with recent history), and the
        question-alone similarity of each (what a verbatim FAQ answer is decided on)."""
        messages = check_messages(messages)
        question = messages[-1]["content"]
        queries = [question]
        history = [m for m in messages[:-1] if m["role"] == "user"]
        if history and self.policy.max_history_tokens > 0:
            kept = cap_history(history, self._count_tokens, self.policy.max_history_tokens)
            if kept:
                queries.append(" ".join([*(m["content"] for m in kept), question]))
        vectors = self.embed(queries)
        with self._lock:
            scores, ids = self.index.search(vectors, k)
        alone = {int(i): float(s) for s, i in zip(scores[0], ids[0])}
        merged: dict[int, float] = {}
        for row_scores, row_ids in zip(scores, ids):
            for s, i in zip(row_scores, row_ids):
                merged[int(i)] = max(merged.get(int(i), -1.0), float(s))
        ranked = sorted(merged.items(), key=lambda kv: -kv[1])
        return [(self.entries[i], s) for i, s in ranked if i in self.entries], alone

    def _count_tokens(self, text: str) -> int:
        tokenizer = self.tokenizer or self.encoder_tokenizer
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    # -- answering ------------------------------------------------------------------------------

    def answer(
        self, messages: list[dict], *, max_tokens: int | None = None, temperature: float = 0.0, stop_event: threading.Event | None = None
    ) -> Answer:
        """One complete reply (see `stream` for the arguments)."""
        final = None
        for item in self.stream(messages, max_tokens=max_tokens, temperature=temperature, stop_event=stop_event):
            if isinstance(item, Answer):
                final = item
        return final

    def stream(
        self, messages: list[dict], *, max_tokens: int | None = None, temperature: float = 0.0, stop_event: threading.Event | None = None
    ) -> Iterator[str | Answer]:
        """Text pieces as they are generated, then the final `Answer` (FAQ and handoff replies come as one piece).

        The arguments are checked here, before anything is yielded, so a caller (an HTTP route) can refuse bad
        input before it starts a streamed response."""
        max_tokens = self.policy.max_new_tokens if max_tokens is None else max_tokens
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
            raise DataError(f"max_tokens: must be an integer in [1, {MAX_TOKENS_LIMIT}]; got {max_tokens!r}")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
            raise DataError(f"temperature: must be a number in [0, 2]; got {temperature!r}")
        return self._stream(check_messages(messages), max_tokens, float(temperature), stop_event)

    def _stream(self, messages: list[dict], max_tokens: int, temperature: float, stop_event) -> Iterator[str | Answer]:
        started = time.perf_counter()
        policy = self.policy
        if not policy.use_retrieval:
            yield from self._generate(messages, None, started, 0.0, max_tokens, temperature, stop_event, None)
            return
        ranked, alone = self.retrieve(messages)
        retrieval_seconds = time.perf_counter() - started
        best = ranked[0][1] if ranked else None
        faq = max(((e, alone[e.id]) for e, _ in ranked if e.kind == "faq" and e.id in alone), key=lambda pair: pair[1], default=None)
        if policy.use_faq and faq is not None and faq[1] >= policy.faq_threshold:
            entry, score = faq
            answer = Answer(text=entry.answer, mode="faq", handoff=False, sources=[source_of(entry, score)], best_score=_rounded(best))
            answer.timings = {"seconds": time.perf_counter() - started, "retrieval_seconds": retrieval_seconds}
            yield answer.text
            yield answer
            return
        reason = None
        if best is None:
            reason = "the knowledge base is empty"
        elif best < policy.handoff_threshold:
            reason = f"no entry of the knowledge base is close enough to the question (best similarity {best:.2f} < {policy.handoff_threshold:.2f})"
        elif self.model is None:
            reason = f"no FAQ question is close enough (best {faq[1] if faq else float('nan'):.2f} < {policy.faq_threshold:.2f}) and the bot has no generator"
        if reason is not None:
            answer = Answer(text=HANDOFF_TEXT, mode="handoff", handoff=True, reason=reason, best_score=_rounded(best))
            answer.timings = {"seconds": time.perf_counter() - started, "retrieval_seconds": retrieval_seconds}
            yield answer.text
            yield answer
            return
        top = ranked[: policy.top_k]
        yield from self._generate(messages, top, started, retrieval_seconds, max_tokens, temperature, stop_event, best)

    def _generate(self, messages, top, started, retrieval_seconds, max_tokens, temperature, stop_event, best) -> Iterator[str | Answer]:
        if self.model is None:
            raise ConfigError("this bot has no generator (chat.generator: none); it answers from the FAQ only")
        system = [m for m in messages[:-1] if m["role"] == "system"]  # the caller's instructions are always kept
        turns = [m for m in messages[:-1] if m["role"] != "system"]
        history = system + cap_history(turns, self._count_tokens, self.policy.max_history_tokens)
        passages = None if top is None else [{"context": context_of(e), "source": e.source} for e, _ in top]
        prompt = build_prompt(self.tokenizer, history, messages[-1]["content"], passages, passage_tokens=self.policy.max_passage_tokens)
        window = getattr(self.model.config, "max_position_embeddings", None)
        if window:  # the answer stops at the generator's window (finish_reason "length") rather than failing
            if len(prompt) >= window:
                raise DataError(f"the prompt is {len(prompt)} tokens, the generator's whole window is {window}: shorten the last message")
            max_tokens = min(max_tokens, window - len(prompt))
        stats: GenerationStats | None = None
        for item in stream_generate(
            self.model,
            self.tokenizer,
            prompt,
            max_new_tokens=max_tokens,
            temperature=temperature,
            stop_event=stop_event,
            decode_threads=self.policy.decode_threads,
        ):
            if isinstance(item, GenerationStats):
                stats = item
            else:
                yield item
        sources = [] if top is None else [source_of(e, s) for e, s in top]
        finish = "length" if stats.completion_tokens >= max_tokens and not stats.stopped else "stop"
        answer = Answer(
            text=stats.text.strip(), mode="generated", handoff=False, sources=sources, best_score=_rounded(best), finish_reason=finish
        )
        answer.usage = {
            "prompt_tokens": stats.prompt_tokens,
            "completion_tokens": stats.completion_tokens,
            "total_tokens": stats.prompt_tokens + stats.completion_tokens,
        }
        answer.timings = {
            "seconds": time.perf_counter() - started,
            "retrieval_seconds": retrieval_seconds,
            "ttft_seconds": None if stats.ttft_seconds is None else retrieval_seconds + stats.ttft_seconds,
            "tokens_per_s": stats.tokens_per_s,
            "stopped": stats.stopped,
        }
        yield answer


def _rounded(score: float | None) -> float | None:
    return None if score is None else round(float(score), 4)


@dataclass
class _PassageSettings:
    passage_words: int
    passage_overlap: int


def context_of(entry: Entry) -> str:
    """What the generator reads of an entry: a passage, or an FAQ pair."""
    if entry.kind == "faq":
        return f"Q: {entry.text}\nA: {entry.answer}"
    return entry.text


def source_of(entry: Entry, score: float) -> dict:
    text = entry.answer if entry.kind == "faq" else entry.text
    out = {"id": entry.id, "kind": entry.kind, "source": entry.source, "score": round(float(score), 4), "text": text[:SNIPPET_CHARS]}
    if entry.kind == "faq":
        out["question"] = entry.text
        if entry.category:
            out["category"] = entry.category
    else:
        out.update(position=entry.position, title=entry.title)
    return out


def read_entries(path: Path) -> dict[int, Entry]:
    if not path.is_file():
        raise DataError(f"{path}: the knowledge base's entries are missing")
    entries = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                record = json.loads(line)
                entries[record["id"]] = Entry(**record)
    return entries


def save_index(folder: Path, index: VectorIndex, entries: dict[int, Entry]) -> None:
    """Entries and vectors together, replacing `folder` whole (a reader never sees one without the other)."""
    with atomic_dir(folder) as tmp:
        index.save(tmp)
        with atomic_file(Path(tmp) / ENTRIES_FILE, "w", encoding="utf-8") as fh:
            for entry_id in sorted(entries):
                fh.write(json.dumps(entries[entry_id].to_dict(), ensure_ascii=False) + "\n")
