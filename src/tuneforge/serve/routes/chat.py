"""`POST /v1/chat/completions`: the FAQ bot, OpenAI-compatible, with `sources` and `handoff` added.

Any OpenAI client pointed at the service's base URL works: `messages` (roles system,
developer, user, assistant; content as a string or a list of text parts), `max_tokens`
(or `max_completion_tokens`), `temperature`, `stream`. Other OpenAI fields (`top_p`, `stop`,
`user`, `seed`, ...) are accepted and ignored; `n` must be 1. A streamed answer is
server-sent events of `chat.completion.chunk` objects, the last one carrying
`finish_reason`, `sources`, `handoff` and `usage`, then `data: [DONE]`.

Everything about a request is checked before a generation slot is taken, so a bad
request is a 4xx and never a broken stream. A client that disconnects stops its
generation at the next token; shutdown lets running answers finish (serve.drain_seconds).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from tuneforge.errors import ConfigError, DataError
from tuneforge.serve.errors import ApiError
from tuneforge.serve.generations import GenerationsFull, stream_in_thread
from tuneforge.serve.requests import authorize, parse_body, pick_model
from tuneforge.serve.routes.common import ERRORS, NOT_BLANK, WholeNumber, auth

PATH = "/v1/chat/completions"
MAX_MESSAGES = 64
MAX_TOKENS = 4096


Number = StrictInt | StrictFloat
ROLES = ("system", "developer", "user", "assistant")
MAX_PARTS = 16


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: StrictStr


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")  # OpenAI messages may carry `name` and other fields
    role: Literal["system", "developer", "user", "assistant"]
    content: StrictStr | list[TextPart]


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # top_p, stop, user, seed, stream_options...: accepted, not used
    model: StrictStr | None = None
    messages: list[Message] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_tokens: WholeNumber | None = Field(None, ge=1, le=MAX_TOKENS)
    max_completion_tokens: WholeNumber | None = Field(None, ge=1, le=MAX_TOKENS)
    temperature: Number | None = Field(None, ge=0, le=2)
    stream: StrictBool = False
    n: WholeNumber | None = Field(None, ge=1, le=1)


def request_schema(settings) -> dict:
    """The request body exactly as the route accepts it (written out: the limits are this service's settings)."""
    text = {"type": "string", "minLength": 1, "maxLength": settings.max_chars, "pattern": NOT_BLANK}
    parts = {
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_PARTS,
        "items": {"type": "object", "required": ["type", "text"], "properties": {"type": {"const": "text"}, "text": text}},
    }
    tokens = {"anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_TOKENS}, {"type": "null"}]}
    return {
        "type": "object",
        "required": ["messages"],
        "properties": {
            "model": {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "Served chat model; the first one when omitted."},
            "messages": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_MESSAGES,
                "items": {
                    "type": "object",
                    "required": ["role", "content"],
                    "properties": {
                        "role": {"enum": list(ROLES)},
                        "content": {
                            "anyOf": [text, parts],
                            "description": "A string, or text parts; not blank, at most serve.max_chars characters each.",
                        },
                    },
                },
                "contains": {"type": "object", "required": ["role"], "properties": {"role": {"const": "user"}}},
                "description": "The conversation. The bot answers the last user message; messages after it are counted in "
                "`unused_messages`, not used.",
            },
            "max_tokens": {**tokens, "description": "Most tokens to generate (default: the bot's); capped by the generator's window."},
            "max_completion_tokens": {**tokens, "description": "The newer name of max_tokens."},
            "temperature": {"anyOf": [{"type": "number", "minimum": 0, "maximum": 2}, {"type": "null"}], "description": "0: greedy."},
            "stream": {"type": "boolean", "description": "Server-sent events, one chunk per piece of text."},
            "n": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 1}, {"type": "null"}], "description": "Only 1."},
        },
        "description": "OpenAI chat completion request; other OpenAI fields (top_p, stop, user, seed, ...) are accepted and ignored.",
    }


class Source(BaseModel):
    model_config = ConfigDict(extra="allow")
    source: str
    score: float | None = None


class ChoiceMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: ChoiceMessage
    finish_reason: Literal["stop", "length"]


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    sources: list[Source] = Field(description="What the answer rests on: the FAQ entry, or the passages it cites, best first.")
    handoff: bool = Field(description="True: the bot hands the conversation to a person instead of guessing.")
    handoff_reason: str | None = None
    mode: Literal["faq", "generated", "handoff"]
    unused_messages: int = Field(0, description="Messages after the last user message: not used (the bot answers that one).")


def _messages(payload: ChatRequest, max_chars: int) -> tuple[list[dict], int]:
    """The conversation up to its last user message, and how many messages after that one are not used."""
    out = []
    for i, m in enumerate(payload.messages):
        texts = [m.content] if isinstance(m.content, str) else [part.text for part in m.content]
        where = f"messages[{i}].content"
        if not texts or len(texts) > MAX_PARTS:
            raise ApiError(422, f"{where}: give a string or 1 to {MAX_PARTS} text parts", "invalid_request")
        for j, text in enumerate(texts):
            at = where if isinstance(m.content, str) else f"{where}[{j}].text"
            if len(text) > max_chars:
                raise ApiError(422, f"{at} has {len(text)} characters; the limit (serve.max_chars) is {max_chars}", "text_too_long")
            if not text.strip():
                raise ApiError(422, f"{at} is empty or only whitespace", "empty_text")
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ApiError(422, f"{at}: character {exc.start} is not valid Unicode (a lone surrogate)", "invalid_text") from None
        out.append({"role": "system" if m.role == "developer" else m.role, "content": "".join(texts)})
    last_user = max((i for i, m in enumerate(out) if m["role"] == "user"), default=None)
    if last_user is None:
        raise ApiError(422, "messages: no message from role 'user' to answer", "invalid_request")
    return out[: last_user + 1], len(out) - last_user - 1


def router(state) -> APIRouter:
    api = APIRouter()
    body = request_schema(state.settings)
    streamed = {
        "text/event-stream": {
            "schema": {
                "type": "object",
                "required": ["data"],
                "properties": {
                    "data": {"type": "string", "description": "A JSON `chat.completion.chunk` (the last with sources), then `[DONE]`."},
                    "event": {"type": "string"},
                },
                "description": "One server-sent event.",
            }
        }
    }

    @api.post(
        PATH,
        response_model=ChatResponse,
        responses={
            200: {
                "description": "The answer (JSON), or with `stream: true` server-sent events of `chat.completion.chunk` objects.",
                "content": streamed,
            },
            **ERRORS,
        },
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": body}}}},
        dependencies=auth(state),
        summary="Answer a conversation from the knowledge base (OpenAI-compatible), with sources and handoff.",
        name="chat",
    )
    async def chat(request: Request):
        authorize(request, state)
        payload = parse_body(await request.body(), ChatRequest)
        messages, unused = _messages(payload, state.settings.max_chars)
        served = pick_model(payload.model, state, "chat")
        if state.draining:
            raise ApiError(503, "service is shutting down", "draining", {"Retry-After": "1"})
        bot = served.predictor
        max_tokens = payload.max_completion_tokens or payload.max_tokens or bot.policy.max_new_tokens
        temperature = payload.temperature or 0.0
        generation = Generation(served, state)
        await generation.start(lambda ev: bot.stream(messages, max_tokens=max_tokens, temperature=temperature, stop_event=ev))
        meta = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": served.name}
        extra = {"unused_messages": unused}
        try:  # the first piece: retrieval, policy and prompt are done, so any problem with the request is known now
            first = await generation.next(request, state.settings.generation_timeout_s)
        except BaseException:
            await generation.close()
            raise
        if payload.stream:
            return StreamingResponse(
                _events(first, generation, meta, extra), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
            )
        try:
            answer = first
            while isinstance(answer, str):
                answer = await generation.next(request, state.settings.generation_timeout_s - generation.elapsed())
        finally:
            await generation.close()
        generation.observe(answer)
        return JSONResponse(_response(answer, meta, extra).model_dump())

    return api


class Generation:
    """One answer being generated: its slot, its stop event, its pieces, and what is measured of it."""

    def __init__(self, served, state):
        self.served, self.state = served, state
        self.stop = threading.Event()
        self.pieces = None
        self.started = time.perf_counter()
        self.first_piece_at: float | None = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    async def start(self, make) -> None:
        self.state.metrics.generations.labels(self.served.name).inc()
        try:
            await self.served.slots.acquire()
        except GenerationsFull as exc:
            self.state.metrics.generations.labels(self.served.name).dec()
            raise ApiError(429, f"too busy: {exc}", "queue_full", {"Retry-After": "1"}) from None
        except BaseException:  # cancelled while waiting for a slot (the client went away): it never held one
            self.state.metrics.generations.labels(self.served.name).dec()
            raise
        self.pieces = stream_in_thread(make, self.stop)

    async def next(self, request: Request | None, timeout: float):
        """The next piece (str) or the final Answer; 422 for a request the bot cannot take, 504 when too slow."""
        try:
            item = await asyncio.wait_for(anext(self.pieces), timeout=max(timeout, 0.001))
        except asyncio.TimeoutError:
            raise ApiError(504, f"not answered within {self.state.settings.generation_timeout_s} s", "timeout") from None
        except (DataError, ConfigError) as exc:
            raise ApiError(422, str(exc), "invalid_request") from None
        except StopAsyncIteration:
            raise RuntimeError("the bot ended without an answer") from None
        if isinstance(item, str) and self.first_piece_at is None:
            self.first_piece_at = time.perf_counter()
        if request is not None and isinstance(item, str) and await request.is_disconnected():
            # nobody to answer: `close` stops the generation; 499 (as nginx logs it) is never seen by anyone
            raise ApiError(499, "the client disconnected before the answer was complete", "client_disconnected")
        return item

    def observe(self, answer) -> None:
        metrics, name = self.state.metrics, self.served.name
        metrics.tokens_generated.labels(name).inc(answer.usage.get("completion_tokens", 0))
        ttft = (answer.timings or {}).get("ttft_seconds")
        if ttft is not None:
            metrics.time_to_first_token.labels(name).observe(ttft)

    async def close(self) -> None:
        self.stop.set()
        if self.pieces is not None:
            await self.pieces.aclose()
            self.pieces = None
            await self.served.slots.release()
            self.state.metrics.generations.labels(self.served.name).dec()


def _response(answer, meta: dict, extra: dict) -> ChatResponse:
    return ChatResponse(
        **meta,
        **extra,
        choices=[Choice(message=ChoiceMessage(content=answer.text), finish_reason=answer.finish_reason)],
        usage=Usage(**answer.usage),
        sources=[Source(**s) for s in answer.sources],
        handoff=answer.handoff,
        handoff_reason=answer.reason,
        mode=answer.mode,
    )


def _chunk(meta: dict, delta: dict, finish_reason: str | None = None, **extra) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
    body = {**meta, "object": "chat.completion.chunk", "choices": [choice], **extra}
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()


async def _events(first, generation: Generation, meta: dict, extra: dict):
    """Server-sent events, from the piece already taken; a client that disconnects cancels this, which stops the generation."""
    try:
        yield _chunk(meta, {"role": "assistant", "content": ""})
        item = first
        while True:
            if not isinstance(item, str):
                generation.observe(item)
                final = _response(item, meta, extra).model_dump()
                fields = {k: final[k] for k in ("usage", "sources", "handoff", "handoff_reason", "mode", "unused_messages")}
                yield _chunk(meta, {}, final["choices"][0]["finish_reason"], **fields)
                yield b"data: [DONE]\n\n"
                return
            yield _chunk(meta, {"content": item})
            try:
                item = await generation.next(None, generation.state.settings.generation_timeout_s)
            except ApiError as exc:  # headers are sent: the error becomes the stream's last event
                yield f"data: {json.dumps({'error': exc.message, 'error_type': exc.error_type})}\n\n".encode()
                return
    finally:
        await generation.close()
