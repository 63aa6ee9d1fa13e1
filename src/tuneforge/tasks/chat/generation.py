"""Prompts and streamed generation for the bot's generator (any causal LM with a chat template).

Generation runs `model.generate` (with a preallocated KV cache where the model supports one) in a worker thread and
hands text pieces over through `TextIteratorStreamer`; a stopping criterion watches
a `threading.Event`, so a client that goes away stops its generation at the next token.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from tuneforge.errors import DataError

ROLES = ("system", "user", "assistant")
SYSTEM_PROMPT = (
    "You are a helpful customer-service assistant. Answer the user's last question briefly, using only the numbered "
    "passages below, and cite the passages you used like [1]. If the passages do not answer it, say that you do not know."
)
SYSTEM_PROMPT_NO_PASSAGES = "You are a helpful customer-service assistant. Answer the user's last question briefly."


def check_messages(messages) -> list[dict]:
    """Messages as [{"role", "content"}], the last one from the user; a DataError naming the bad item otherwise."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise DataError("messages: give a non-empty list of {'role': ..., 'content': ...}")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise DataError(f"messages[{i}]: expected {{'role': str, 'content': str}}, got {str(m)[:80]!r}")
        if m["role"] not in ROLES:
            raise DataError(f"messages[{i}].role: must be one of {', '.join(ROLES)}; got {m['role']!r}")
        out.append({"role": m["role"], "content": m["content"]})
    if out[-1]["role"] != "user" or not out[-1]["content"].strip():
        raise DataError("messages: the last message must be a non-empty question from role 'user'")
    return out


def cap_history(history: list[dict], count_tokens: Callable[[str], int], budget: int) -> list[dict]:
    """The most recent turns of `history` whose contents fit in `budget` tokens (oldest dropped first, whole turns)."""
    kept: list[dict] = []
    used = 0
    for message in reversed(history):
        cost = count_tokens(message["content"])
        if used + cost > budget:
            break
        kept.append(message)
        used += cost
    return list(reversed(kept))


def passage_block(passages: list[dict], tokenizer, budget: int) -> str:
    """Numbered passages `[1] (source) text`, cut to `budget` tokens in total (later passages first)."""
    lines, used = [], 0
    for n, p in enumerate(passages, start=1):
        body = p["context"]
        ids = tokenizer(body, add_special_tokens=False)["input_ids"]
        room = budget - used
        if room <= 8:
            break
        if len(ids) > room:
            body = tokenizer.decode(ids[:room], skip_special_tokens=True)
        used += min(len(ids), room)
        lines.append(f"[{n}] ({p['source']}) {body}")
    return "\n\n".join(lines)


def build_prompt(tokenizer, history: list[dict], question: str, passages: list[dict] | None, *, passage_tokens: int) -> list[int]:
    """Token ids of the chat-templated prompt: system (with passages), capped history, the question."""
    system = [m["content"] for m in history if m["role"] == "system"]
    turns = [m for m in history if m["role"] != "system"]
    if passages is None:
        head = SYSTEM_PROMPT_NO_PASSAGES
    else:
        head = f"{SYSTEM_PROMPT}\n\nPassages:\n{passage_block(passages, tokenizer, passage_tokens)}"
    messages = [{"role": "system", "content": "\n\n".join([head, *system])}, *turns, {"role": "user", "content": question}]
    if not getattr(tokenizer, "chat_template", None):
        raise DataError("the generator's tokenizer has no chat template; use an instruction-tuned model (e.g. smollm2-135m)")
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if isinstance(ids, dict) or hasattr(ids, "keys"):  # transformers 5 may return a BatchEncoding
        ids = ids["input_ids"]
    return list(ids)


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    ttft_seconds: float | None = None
    tokens_per_s: float | None = None  # decoding speed: tokens after the first / time after the first
    stopped: bool = False  # the stop event ended it early
    text: str = ""
    pieces: list[str] = field(default_factory=list)


class _DecodeThreads:
    """A StoppingCriteria that never stops: after the prompt's prefill (its first call) it sets this thread's
    torch threads to `threads` for the token-by-token rest, which at batch 1 is memory-bound."""

    def __init__(self, threads: int):
        self.threads, self.done = threads, False

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        if not self.done:
            torch.set_num_threads(self.threads)
            self.done = True
        return torch.zeros((input_ids.shape[0],), dtype=torch.bool, device=input_ids.device)


class _StopOnEvent:
    """A StoppingCriteria that ends generation once `event` is set (checked after every token)."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


def stream_generate(
    model,
    tokenizer,
    prompt_ids: list[int],
    *,
    max_new_tokens: int,
    temperature: float,
    stop_event: threading.Event | None = None,
    decode_threads: int = 0,
) -> Iterator[str | GenerationStats]:
    """Yield decoded text pieces as they come, then one `GenerationStats`.

    The prompt is read with the caller's torch threads; `decode_threads` (0: the same) generate the rest.
    torch's thread count is per OS thread once set, so this changes only the generation thread."""
    import torch
    from transformers import StoppingCriteriaList, TextIteratorStreamer

    from tuneforge.models.causal_speed import static_cache_kwargs

    stop_event = stop_event or threading.Event()
    own_stop = threading.Event()  # set when the consumer goes away, so the thread ends too
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    input_ids = torch.tensor([prompt_ids], dtype=torch.long)
    kwargs = {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "max_new_tokens": max_new_tokens,
        "streamer": streamer,
        "stopping_criteria": StoppingCriteriaList(
            [_StopOnEvent(stop_event), _StopOnEvent(own_stop), *([_DecodeThreads(decode_threads)] if decode_threads else [])]
        ),
        "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        **static_cache_kwargs(model),
    }
    if temperature > 0:
        kwargs.update(do_sample=True, temperature=temperature)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    result: dict = {}

    threads = torch.get_num_threads()  # the caller's: the prompt's prefill uses them

    def work():
        torch.set_num_threads(threads)
        try:
            with torch.inference_mode():
                result["output"] = model.generate(**kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread below
            result["error"] = exc
            streamer.end()
        finally:
            torch.set_num_threads(threads)  # also the default of threads started later: leave it as it was

    stats = GenerationStats(prompt_tokens=len(prompt_ids))
    started = time.perf_counter()
    thread = threading.Thread(target=work, name="tuneforge-generate", daemon=True)
    thread.start()
    first = None
    try:
        for piece in streamer:
            if not piece:
                continue
            if first is None:
                first = time.perf_counter()
            stats.pieces.append(piece)
            yield piece
    finally:
        own_stop.set()
        thread.join()
    if "error" in result:
        raise result["error"]
    done = time.perf_counter()
    output = result.get("output")
    stats.completion_tokens = int(output.shape[1] - len(prompt_ids)) if output is not None else 0
    stats.text = "".join(stats.pieces)
    stats.seconds = done - started
    stats.ttft_seconds = (first - started) if first is not None else None
    if first is not None and stats.completion_tokens > 1 and done > first:
        stats.tokens_per_s = (stats.completion_tokens - 1) / (done - first)
    stats.stopped = stop_event.is_set()
    yield stats
