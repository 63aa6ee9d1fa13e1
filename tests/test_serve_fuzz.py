"""Property-based fuzzing of /v1/classify: 1,000+ malformed requests, never a 5xx, still serving after."""

import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuneforge.config import load_config
from tuneforge.engine.run import train

from conftest import write_config
from serve_helpers import make_app

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=20,
)
near_valid = st.fixed_dictionaries(
    {"texts": st.one_of(st.lists(st.text(max_size=300), max_size=40), json_values)},
    optional={"model": st.one_of(st.text(max_size=10), json_values), "extra": json_values},
)
bodies = st.one_of(
    st.binary(max_size=600),
    json_values.map(lambda v: json.dumps(v).encode()),
    near_valid.map(lambda v: json.dumps(v).encode()),
    near_valid.map(lambda v: json.dumps(v).encode()[: len(json.dumps(v)) // 2]),  # truncated JSON
)
content_types = st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", ""])


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory):
    run_dir = train(load_config(write_config(tmp_path_factory.mktemp("fuzz"), None, method="tfidf"))).run_dir
    app, _ = make_app([run_dir], max_texts=16, max_chars=250, max_body_bytes=4096)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_malformed_requests_never_cause_5xx_and_service_still_answers(fuzz_client):
    sent = []

    @settings(max_examples=1100, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
    @given(body=bodies, content_type=content_types)
    def fuzz(body, content_type):
        headers = {"content-type": content_type} if content_type else {}
        response = fuzz_client.post("/v1/classify", content=body, headers=headers)
        sent.append(response.status_code)
        assert response.status_code < 500, (body, response.text)
        if response.status_code != 200:
            assert set(response.json()) == {"error", "error_type"}

    fuzz()
    assert len(sent) >= 1000
    assert {400, 422} <= set(sent)  # the generator really produced both kinds of bad input
    r = fuzz_client.post("/v1/classify", json={"texts": ["The phone was great and wonderful."]})
    assert r.status_code == 200 and r.json()["results"][0]["label"] == "positive"
    assert fuzz_client.get("/readyz").status_code == 200
    assert "tuneforge_requests_total" in fuzz_client.get("/metrics").text
