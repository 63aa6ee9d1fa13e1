"""The OpenAPI document tells the truth: Schemathesis, every check, against the real `tuneforge serve`.

The server runs on a loopback port, without API keys (and once more with a key), serving a tfidf
classify run and a tfidf multilabel run (no entities or recommend run: those routes are fuzzed on their 404 and
error paths). Schemathesis
runs as its CLI (`schemathesis run URL/openapi.json --checks all ...`, the command
docs/serving.md gives): its pytest loader for a schema behind a fixture
(`schemathesis.pytest.from_fixture`) fails under pytest 9 in schemathesis 4.32.
"""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from tuneforge.config import load_config
from tuneforge.engine.run import train
from tuneforge.serve.app import build_state, create_app
from tuneforge.serve.auth import load_key_digests
from tuneforge.serve.routes.common import NOT_BLANK
from tuneforge.serve.settings import ServeSettings

from conftest import write_config

SEED = 20240611
MAX_EXAMPLES = 100  # per operation and phase; ~700 requests, a few seconds
LIMITS = {"max_texts": 4, "max_chars": 200}  # small, so boundary cases (maxItems, maxLength) stay cheap
PROTECTED = [
    ("/v1/classify", "post"),
    ("/v1/explain", "post"),
    ("/v1/multilabel", "post"),
    ("/v1/entities", "post"),
    ("/v1/recommend", "post"),
    ("/v1/similar", "post"),
    ("/v1/chat/completions", "post"),
    ("/v1/models", "get"),
]
UNDECLARED = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "HEAD"]


def _train(folder: Path, task: str) -> Path:
    config = write_config(folder, None, method="tfidf")
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["task"] = task  # the reviews' one sentiment per row is a valid multilabel target too
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    return train(load_config(config)).run_dir


def _chat_bot(folder: Path) -> Path:
    """A chat run on the tiny knowledge base: a bag-of-words BERT for retrieval, a random tiny Llama that writes 4 tokens."""
    from chat_fixtures import build_models, chat_config

    return train(chat_config(build_models(folder), folder, eval_queries=None, max_new_tokens=4)).run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("contract")
    return {
        "reviews": _train(root / "classify", "classify"),
        "tags": _train(root / "multilabel", "multilabel"),
        "bot": _chat_bot(root / "chat"),
    }


@contextlib.contextmanager
def _serve(runs: dict, log_path: Path, keys: str | None = None):
    """`tuneforge serve` in a subprocess; yields its base URL once ready, SIGTERM at the end.

    `--port 0`: the server binds a free port itself and logs it, so no other process on this
    machine (other test runs serve too) can take the port between choosing and binding it.
    """
    settings = [x for key, value in LIMITS.items() for x in ("--set", f"serve.{key}={value}")]
    env = {k: v for k, v in os.environ.items() if k != "TUNEFORGE_API_KEYS"}
    if keys:
        env["TUNEFORGE_API_KEYS"] = keys
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tuneforge.cli", "serve", *(f"{n}={p}" for n, p in runs.items()), "--port", "0", *settings],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            base, deadline = None, time.time() + 60
            while time.time() < deadline:
                if proc.poll() is not None:
                    pytest.fail(f"server exited {proc.returncode}: {log_path.read_text()}")
                if base is None:
                    bound = re.search(r"Uvicorn running on (http://\S+)", log_path.read_text())
                    base = bound and bound[1]
                if base is not None:
                    try:
                        ready = httpx.get(f"{base}/readyz", timeout=1)
                        if ready.status_code == 200:
                            assert ready.json()["models"] == list(runs)
                            break
                    except httpx.TransportError:
                        pass
                time.sleep(0.2)
            else:
                pytest.fail(f"server did not become ready: {log_path.read_text()}")
            yield base
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()


@pytest.fixture(scope="module")
def base_url(runs, tmp_path_factory):
    with _serve(runs, tmp_path_factory.mktemp("server") / "server.log") as base:  # no keys: loopback only
        yield base


def _schemathesis(url: str, folder: Path, max_examples: int, *extra: str) -> dict:
    """`schemathesis run URL --checks all` with a fixed seed; its JSON report after asserting exit code 0."""
    script = Path(sys.executable).with_name("schemathesis")
    program = [str(script)] if script.exists() else [sys.executable, "-c", "from schemathesis.cli import schemathesis; schemathesis()"]
    report = folder / "report.json"
    command = [
        *program,
        "run",
        url,
        "--checks", "all",
        "--max-examples", str(max_examples),
        "--seed", str(SEED),
        "--workers", "1",
        "--generation-database", "none",
        "--no-color",
        "--report", "json",
        "--report-json-path", str(report),
        *extra,
    ]  # fmt: skip
    # cwd: a folder without schemathesis.toml, so no stray config changes the run
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=folder)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    summary = json.loads(report.read_text(encoding="utf-8"))
    assert summary["exit_code"] == 0 and summary["complete"]
    assert summary["failures"] == [] and summary["errors"] == []
    assert summary["test_cases"]["with_failures"] == 0
    assert summary["operations"]["tested"] == summary["operations"]["total"] == 11
    assert summary["phases"]["coverage"]["status"] == summary["phases"]["fuzzing"]["status"] == "success"
    return summary


def test_schemathesis_all_checks_find_no_failure(base_url, tmp_path):
    summary = _schemathesis(f"{base_url}/openapi.json", tmp_path, MAX_EXAMPLES)
    generated = summary["test_cases"]["generated"]
    assert generated >= 300, summary["test_cases"]
    # the fuzzer got past validation on the routes that serve a model: real 200 bodies were checked
    for route in ("POST /v1/classify", "POST /v1/multilabel", "POST /v1/chat/completions"):
        assert summary["valid_rates"][route]["fuzzing"]["accepted"] > 0, summary["valid_rates"][route]
    print(f"schemathesis {summary['schemathesis_version']}: {generated} test cases, 0 failures")


def test_schemathesis_with_api_keys_finds_no_failure(runs, tmp_path):
    """Keys configured: the bearer scheme is declared, the key sent, and `ignored_auth` checks that
    requests without it really get 401."""
    with _serve(runs, tmp_path / "server.log", keys="k") as base:
        summary = _schemathesis(f"{base}/openapi.json", tmp_path, 20, "--header", "Authorization: Bearer k")
    assert summary["warnings"]["unused_openapi_auth"] == [] and summary["warnings"]["missing_auth"] == []


def test_schema_is_valid_openapi_and_lists_every_answer(base_url):
    schema = httpx.get(f"{base_url}/openapi.json").json()
    validate(schema)  # openapi-spec-validator: a broken document fails here
    ops = schema["paths"]
    text_errors = {"400", "401", "404", "413", "422", "429", "500", "503", "504"}
    for route in ("/v1/classify", "/v1/multilabel", "/v1/entities"):
        assert set(ops[route]["post"]["responses"]) == {"200", *text_errors}
    assert set(ops["/v1/models"]["get"]["responses"]) == {"200", "401", "500"}
    assert set(ops["/readyz"]["get"]["responses"]) == {"200", "500", "503"}
    assert list(ops["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain; version=0.0.4"]
    for path, methods in ops.items():
        for op in methods.values():
            for status, answer in op["responses"].items():
                if status != "200":  # every error: the one error body, JSON, and its X-Error-Type header
                    assert answer["content"] == {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}, (path, status)
                    assert answer["headers"]["X-Error-Type"]["required"] is True
    assert schema["components"]["schemas"]["ErrorBody"]["required"] == ["error", "error_type"]
    classify_model = ops["/v1/classify"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]["model"]
    assert {"type": "string", "enum": ["reviews"]} in classify_model["anyOf"]  # only the models this route serves


def test_every_405_carries_allow_with_the_documented_methods(base_url):
    """The router sets Allow from the one route matching the path; a second route on a path
    (GET here, POST there) would advertise too few methods and fail this test."""
    schema = httpx.get(f"{base_url}/openapi.json").json()
    for path, methods in schema["paths"].items():
        documented = {m.upper() for m in methods}
        for method in UNDECLARED:
            if method in documented:
                continue
            r = httpx.request(method, f"{base_url}{path}")
            assert r.status_code == 405, (method, path, r.status_code)
            assert set(r.headers["Allow"].split(", ")) == documented, (method, path, r.headers.get("Allow"))
            assert r.headers["X-Error-Type"] == "method_not_allowed"
            if method != "HEAD":
                assert r.json() == {"error": "Method Not Allowed", "error_type": "method_not_allowed"}
    r = httpx.request("TRACE", f"{base_url}/openapi.json")  # FastAPI's own routes too
    assert r.status_code == 405 and set(r.headers["Allow"].split(", ")) == {"GET", "HEAD"}


def test_metrics_media_type_is_the_documented_one(base_url):
    r = httpx.get(f"{base_url}/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")


def test_401_is_documented_and_answered_as_documented_when_keys_are_configured():
    state = build_state(ServeSettings(**LIMITS))
    state.key_digests = load_key_digests(environ={"TUNEFORGE_API_KEYS": "k"})
    client = TestClient(create_app(state))  # no models loaded: the key is checked before the model is looked up
    schema = client.get("/openapi.json").json()
    validate(schema)
    assert schema["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["HTTPBearer"]["description"],
    }
    for path, method in PROTECTED:
        op = schema["paths"][path][method]
        assert op["security"] == [{"HTTPBearer": []}]
        documented = op["responses"]["401"]
        assert documented["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
        assert {"X-Error-Type", "WWW-Authenticate"} <= set(documented["headers"])
        r = client.request(method, path, json={"texts": ["fine"]} if method == "post" else None)
        assert r.status_code == 401 and r.json()["error_type"] == "unauthorized"
        assert r.headers["WWW-Authenticate"] == "Bearer" and r.headers["X-Error-Type"] == "unauthorized"
    for path in ("/healthz", "/readyz", "/metrics"):
        assert "security" not in schema["paths"][path]["get"]


def test_no_keys_no_security_scheme():
    state = build_state(ServeSettings())
    state.key_digests = []  # whatever TUNEFORGE_API_KEYS says in this environment
    schema = TestClient(create_app(state)).get("/openapi.json").json()
    assert "securitySchemes" not in schema.get("components", {})
    assert "401" in schema["paths"]["/v1/classify"]["post"]["responses"]  # still documented: keys are configuration


def test_blank_text_pattern_matches_what_the_service_rejects():
    pattern = re.compile(NOT_BLANK)
    for code in range(sys.maxunicode + 1):
        c = chr(code)
        assert (pattern.search(c) is not None) == bool(c.strip()), hex(code)
