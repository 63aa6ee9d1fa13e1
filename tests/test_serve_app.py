"""Every status code the service promises, through FastAPI's TestClient."""

import hashlib
import json
import threading

import pytest
from fastapi.testclient import TestClient

from tuneforge.config import load_config
from tuneforge.engine.run import train

from conftest import write_config
from serve_helpers import make_app

GOOD = {"texts": ["The phone was great and wonderful.", "The lamp was broken and awful."]}


@pytest.fixture(scope="module")
def tfidf_run(tmp_path_factory):
    return train(load_config(write_config(tmp_path_factory.mktemp("serve"), None, method="tfidf"))).run_dir


@pytest.fixture(scope="module")
def client(tfidf_run):
    app, _ = make_app([f"reviews={tfidf_run}"], max_texts=4, max_chars=200, max_body_bytes=4096)
    with TestClient(app) as c:
        yield c


def _error(response, status, error_type):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_type"] == error_type and body["error"]
    return body["error"]


def test_classify_returns_labels_probabilities_and_timing_headers(client):
    r = client.post("/v1/classify", json=GOOD)
    assert r.status_code == 200
    body = r.json()
    assert body["model"] == "reviews"
    assert [x["label"] for x in body["results"]] == ["positive", "negative"]
    for x in body["results"]:
        assert sum(x["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert x["truncated"] is False
    assert float(r.headers["X-Queue-Time"]) >= 0 and float(r.headers["X-Inference-Time"]) >= 0


def test_models_health_ready_metrics_docs(client):
    models = client.get("/v1/models").json()["models"]
    assert models[0]["name"] == "reviews" and models[0]["labels"] == ["negative", "neutral", "positive"]
    assert models[0]["method"] == "tfidf" and models[0]["backend"] == "sklearn" and "accuracy" in models[0]["metrics"]
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    client.post("/v1/classify", content=b"{oops")
    text = client.get("/metrics").text
    assert 'tuneforge_requests_total{error_type="invalid_json",route="/v1/classify",status="400"}' in text
    for name in (
        "tuneforge_request_seconds_bucket",
        "tuneforge_queue_seconds_bucket",
        "tuneforge_inference_seconds_bucket",
        "tuneforge_batch_size_bucket",
        "tuneforge_queue_depth",
    ):
        assert name in text
    assert client.get("/docs").status_code == 200
    assert "/v1/classify" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize(
    ("body", "status", "error_type"),
    [
        (b"{not json", 400, "invalid_json"),
        (b'{"texts": ["caf\xe9"]}', 400, "invalid_encoding"),
        (b'{"texts": []}', 422, "invalid_request"),
        (b'{"texts": "one string"}', 422, "invalid_request"),
        (b'{"texts": [1, 2]}', 422, "invalid_request"),
        (b'{"texts": ["ok"], "extra": 1}', 422, "invalid_request"),
        (b'["ok"]', 422, "invalid_request"),
        (b'{"texts": ["a", "b", "c", "d", "e"]}', 422, "too_many_texts"),
        (json.dumps({"texts": ["x" * 201]}).encode(), 422, "text_too_long"),
        (b'{"texts": ["ok"], "model": "nope"}', 404, "unknown_model"),
    ],
)
def test_bad_requests_get_clear_4xx(client, body, status, error_type):
    message = _error(client.post("/v1/classify", content=body, headers={"content-type": "application/json"}), status, error_type)
    if error_type == "too_many_texts":
        assert "serve.max_texts" in message and "4" in message
    if error_type == "text_too_long":
        assert "texts[0]" in message and "serve.max_chars" in message


def test_body_over_limit_is_413_declared_or_streamed(client):
    _error(client.post("/v1/classify", content=b"x" * 5000), 413, "body_too_large")

    def chunks():
        for _ in range(10):
            yield b"x" * 1000

    _error(client.post("/v1/classify", content=chunks()), 413, "body_too_large")


def test_unknown_route_and_method(client):
    _error(client.get("/nope"), 404, "not_found")
    _error(client.get("/v1/classify"), 405, "method_not_allowed")


def test_api_keys(tfidf_run, tmp_path, monkeypatch):
    app, _ = make_app([tfidf_run], keys=["s3cret", "other"])
    with TestClient(app) as c:
        _error(c.post("/v1/classify", json=GOOD), 401, "unauthorized")
        assert c.post("/v1/classify", json=GOOD, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/v1/models").status_code == 401
        assert c.post("/v1/classify", json=GOOD, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/metrics").status_code == 200 and c.get("/readyz").status_code == 200


def test_hashed_keys_file(tmp_path):
    from tuneforge.errors import ConfigError
    from tuneforge.serve.auth import is_authorized, load_key_digests

    keys = tmp_path / "keys"
    keys.write_text("# team keys\nsha256:" + hashlib.sha256(b"k1").hexdigest() + "\nplain-k2\n")
    digests = load_key_digests(str(keys), environ={})
    assert is_authorized("Bearer k1", digests) and is_authorized("Bearer plain-k2", digests)
    assert not is_authorized("Bearer k3", digests) and not is_authorized(None, digests) and not is_authorized("k1", digests)
    keys.write_text("sha256:abc\n")
    with pytest.raises(ConfigError, match=r"keys:1: 'sha256:' must be followed by 64 hex digits"):
        load_key_digests(str(keys), environ={})


def test_queue_full_is_429_with_retry_after(tfidf_run):
    app, _ = make_app([tfidf_run], delay=0.5, max_batch_size=1, max_wait_ms=0, max_queue=2)
    with TestClient(app) as c:
        statuses, headers = [], []

        def hit():
            r = c.post("/v1/classify", json={"texts": ["a"]})
            statuses.append(r.status_code)
            headers.append(r.headers.get("Retry-After"))

        threads = [threading.Thread(target=hit) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses.count(200) >= 2 and statuses.count(429) >= 1
        assert set(statuses) <= {200, 429}
        assert all(h == "1" for s, h in zip(statuses, headers) if s == 429)


def test_timeout_is_504_and_frees_the_slot(tfidf_run):
    app, state = make_app([tfidf_run], delay=0.6, max_batch_size=1, max_wait_ms=0, max_queue=10, request_timeout_s=0.3)
    with TestClient(app) as c:
        _error(c.post("/v1/classify", json={"texts": ["a"]}), 504, "timeout")
        batcher = next(iter(state.models.values())).batcher
        import time

        deadline = time.time() + 5
        while batcher.depth and time.time() < deadline:
            time.sleep(0.05)
        assert batcher.depth == 0


def test_draining_service_is_not_ready(tfidf_run):
    app, state = make_app([tfidf_run])
    with TestClient(app) as c:
        state.draining = True
        _error(c.get("/readyz"), 503, "draining")
        r = c.post("/v1/classify", json=GOOD)
        _error(r, 503, "draining")
        assert r.headers["Retry-After"] == "1"
        assert c.get("/healthz").status_code == 200


def test_not_ready_before_models_load(tfidf_run):
    from tuneforge.serve.app import ServiceState, create_app
    from tuneforge.serve.metrics import ServiceMetrics
    from tuneforge.serve.settings import ServeSettings

    app = create_app(ServiceState(settings=ServeSettings(), metrics=ServiceMetrics()))
    with TestClient(app) as c:
        _error(c.get("/readyz"), 503, "not_ready")
        _error(c.post("/v1/classify", json=GOOD), 503, "not_ready")


def test_two_models_by_name_and_truncation_flag(tfidf_run, tiny_bert, tmp_path):
    head = train(load_config(write_config(tmp_path, tiny_bert, method="head", max_length=16))).run_dir
    app, _ = make_app([f"words={tfidf_run}", f"encoder={head}"])
    with TestClient(app) as c:
        assert [m["name"] for m in c.get("/v1/models").json()["models"]] == ["words", "encoder"]
        long = "The phone was great and wonderful. " * 10
        r = c.post("/v1/classify", json={"texts": ["The phone was great.", long], "model": "encoder"})
        assert r.status_code == 200 and r.json()["model"] == "encoder"
        assert [x["truncated"] for x in r.json()["results"]] == [False, True]
        assert [x["chunks"] for x in r.json()["results"]] == [1, 1]
        assert c.post("/v1/classify", json={"texts": [long]}).json()["model"] == "words"
    app, _ = make_app([f"encoder={head}"], long_texts="chunk")
    with TestClient(app) as c:
        results = c.post("/v1/classify", json={"texts": ["The phone was great.", long]}).json()["results"]
        assert [x["truncated"] for x in results] == [False, False]
        assert results[0]["chunks"] == 1 and results[1]["chunks"] > 1


def test_concurrent_requests_share_batches(tfidf_run):
    app, _ = make_app([tfidf_run], delay=0.05, max_batch_size=32, max_wait_ms=20)
    with TestClient(app) as c:
        sizes = []

        def hit(i):
            r = c.post("/v1/classify", json={"texts": [f"The phone was great {i}"]})
            assert r.status_code == 200
            sizes.append(int(r.headers["X-Batch-Size"]))

        threads = [threading.Thread(target=hit, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert max(sizes) > 1
