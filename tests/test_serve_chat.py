"""`POST /v1/chat/completions`: OpenAI-shaped answers and streams, sources and handoff, limits, and the openai client."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from chat_fixtures import FAQ, build_models, chat_config
from fastapi.testclient import TestClient

from tuneforge.engine.run import train
from tuneforge.serve.generations import GenerationsFull, GenerationSlots, stream_in_thread

from serve_helpers import make_app

PASSWORD = "how do i reset my password please"
BATTERY = "how long does the zephyr battery last"
NONSENSE = "purple elephant dancing tonight"
URL = "/v1/chat/completions"


@pytest.fixture(scope="module")
def chat_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-chat")
    return train(chat_config(build_models(root), root)).run_dir


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def _events(response) -> list:
    events = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = line[len("data: ") :]
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


def test_answers_are_openai_chat_completions_with_sources_and_handoff(chat_run):
    app, _ = make_app([chat_run])
    with TestClient(app) as client:
        faq = client.post(URL, json={"model": chat_run.name, "messages": _user(PASSWORD)})
        assert faq.status_code == 200, faq.text
        body = faq.json()
        assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-") and body["model"] == chat_run.name
        assert body["choices"][0]["message"] == {"role": "assistant", "content": FAQ[0][1]}  # the FAQ answer, verbatim
        assert body["mode"] == "faq" and body["handoff"] is False and body["sources"][0]["source"].endswith("faq.csv:2")

        generated = client.post(URL, json={"messages": _user(BATTERY), "max_tokens": 4}).json()
        assert generated["mode"] == "generated" and generated["usage"]["completion_tokens"] == 4
        assert generated["choices"][0]["finish_reason"] == "length"
        assert any(s["source"].endswith("battery.txt") for s in generated["sources"])

        parts = [{"type": "text", "text": "purple elephant "}, {"type": "text", "text": "dancing tonight"}]
        handoff = client.post(URL, json={"messages": [{"role": "user", "content": parts}]}).json()
        assert handoff["handoff"] is True and handoff["mode"] == "handoff" and "close enough" in handoff["handoff_reason"]

        metrics = client.get("/metrics").text
        assert f'tuneforge_generated_tokens_total{{model="{chat_run.name}"}} 4.0' in metrics
        assert f'tuneforge_generations{{model="{chat_run.name}"}} 0.0' in metrics  # every slot given back


def test_a_stream_is_server_sent_chunks_ending_with_sources_and_done(chat_run):
    app, _ = make_app([chat_run])
    with TestClient(app) as client:
        with client.stream("POST", URL, json={"messages": _user(BATTERY), "stream": True, "max_tokens": 5}) as response:
            assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
            events = _events(response)
        with client.stream("POST", URL, json={"messages": _user(PASSWORD), "stream": True}) as response:
            faq_events = _events(response)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "length" and last["usage"]["completion_tokens"] == 5
    assert last["mode"] == "generated" and last["handoff"] is False and last["sources"]
    assert len(chunks) >= 4 and text.strip()  # pieces as they came, not one block
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in faq_events[:-1]) == FAQ[0][1]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"messages": []}, 422, "messages"),
        ({"messages": [{"role": "assistant", "content": "hello"}]}, 422, "no message from role 'user'"),
        ({"messages": [{"role": "user", "content": "  "}]}, 422, "empty or only whitespace"),
        ({"messages": [{"role": "user", "content": []}]}, 422, "1 to 16 text parts"),
        ({"messages": [{"role": "tool", "content": "x"}]}, 422, "messages.0.role"),
        ({"messages": _user("hi"), "n": 2}, 422, "n:"),
        ({"messages": _user((BATTERY + " ") * 700)}, 422, "window"),
        ({"messages": _user((BATTERY + " ") * 700), "stream": True}, 422, "window"),  # a stream that cannot start is a 422, too
        ({"messages": _user("hi"), "temperature": 3}, 422, "temperature"),
        ({"messages": _user("hi"), "model": "nope"}, 404, "unknown model"),
    ],
)
def test_bad_requests_are_4xx_naming_the_problem(chat_run, body, status, words):
    app, _ = make_app([chat_run], max_chars=40_000)  # room for a question longer than the tiny generator's window
    with TestClient(app) as client:
        response = client.post(URL, json=body)
        assert response.status_code == status, response.text
        assert words in response.json()["error"]
        assert client.get("/metrics").text.count(" 0.0") >= 1
        assert client.post(URL, json={"messages": _user(PASSWORD)}).status_code == 200  # the service is fine afterwards


def test_messages_after_the_last_question_are_counted_not_used(chat_run):
    app, _ = make_app([chat_run])
    with TestClient(app) as client:
        body = {"messages": [*_user(PASSWORD), {"role": "assistant", "content": "Let me see"}]}
        answer = client.post(URL, json=body).json()
    assert answer["mode"] == "faq" and answer["unused_messages"] == 1


def test_other_openai_fields_are_accepted_and_ignored(chat_run):
    app, _ = make_app([chat_run])
    extra = {"top_p": 0.9, "stop": ["\n"], "user": "u1", "seed": 3, "stream_options": {"include_usage": True}, "n": 1}
    with TestClient(app) as client:
        response = client.post(URL, json={"messages": [{"role": "developer", "content": "be brief"}, *_user(PASSWORD)], **extra})
    assert response.status_code == 200 and response.json()["mode"] == "faq"


def test_a_full_waiting_line_gets_429_and_the_others_are_answered(chat_run):
    app, state = make_app([chat_run], max_generations=1, max_waiting_generations=0)
    with TestClient(app) as client:
        served = next(iter(state.models.values()))
        real = served.predictor.stream
        gate = threading.Event()

        def slow_stream(*args, **kwargs):
            gate.wait(5)
            yield from real(*args, **kwargs)

        served.predictor.stream = slow_stream
        results = {}
        first = threading.Thread(target=lambda: results.setdefault("first", client.post(URL, json={"messages": _user(PASSWORD)})))
        first.start()
        deadline = time.time() + 5
        while served.slots.active == 0 and time.time() < deadline:
            time.sleep(0.01)
        busy = client.post(URL, json={"messages": _user(PASSWORD)})
        assert busy.status_code == 429 and busy.headers["Retry-After"] == "1" and busy.json()["error_type"] == "queue_full"
        assert client.get("/readyz").status_code == 503  # saturated: balancers send elsewhere
        gate.set()
        first.join(10)
        assert results["first"].status_code == 200
        served.predictor.stream = real
        assert client.post(URL, json={"messages": _user(PASSWORD)}).status_code == 200


def test_slots_and_stopping_a_generation_early():
    async def scenario():
        slots = GenerationSlots(max_active=1, max_waiting=1)
        await slots.acquire()
        waiter = asyncio.create_task(slots.acquire())
        await asyncio.sleep(0.01)
        assert slots.waiting == 1
        with pytest.raises(GenerationsFull):
            await slots.acquire()
        await slots.release()
        await waiter
        assert slots.active == 1 and slots.waiting == 0
        await slots.release()
        assert await slots.wait_idle(0.1)

        produced = []
        stop = threading.Event()

        def endless(ev):
            while not ev.is_set():
                produced.append(1)
                yield "piece"
                time.sleep(0.005)

        pieces = stream_in_thread(endless, stop)
        assert await anext(pieces) == "piece"
        await pieces.aclose()  # the listener went away (a client disconnected)
        assert stop.is_set()
        count = len(produced)
        await asyncio.sleep(0.05)
        assert len(produced) <= count + 1  # the worker stopped producing

    asyncio.run(scenario())


def test_the_openai_client_works_against_a_served_bot(chat_run, tmp_path):
    openai = pytest.importorskip("openai")
    from test_serve_connections import _start, _stop

    proc, port = _start(chat_run, tmp_path / "server.log")
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0)
        reply = client.chat.completions.create(model="reviews", messages=_user(PASSWORD))
        assert reply.choices[0].message.content == FAQ[0][1]
        assert reply.model_extra["mode"] == "faq" and reply.model_extra["sources"][0]["source"].endswith("faq.csv:2")
        pieces = list(client.chat.completions.create(model="reviews", messages=_user(BATTERY), stream=True, max_tokens=5))
        assert pieces[-1].choices[0].finish_reason == "length"
        assert "".join(p.choices[0].delta.content or "" for p in pieces).strip()
        with pytest.raises(openai.UnprocessableEntityError):
            client.chat.completions.create(model="reviews", messages=[{"role": "assistant", "content": "x"}])
    finally:
        _stop(proc)
