"""One bad request or file must never hurt anyone else's work: each guarantee, with a test that fails without it."""

import json
import logging
import os
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tuneforge.config import load_config
from tuneforge.engine.run import train
from tuneforge.predict.batcher import MicroBatcher
from tuneforge.predict.predictor import Predictor
from tuneforge.rundir import list_runs

from conftest import DATA, run_cli, write_config
from serve_helpers import make_app

JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def tfidf_run(tmp_path_factory):
    return train(load_config(write_config(tmp_path_factory.mktemp("hard-tfidf"), None, method="tfidf"))).run_dir


@pytest.fixture(scope="module")
def head_run(tmp_path_factory, tiny_bert):
    config = write_config(tmp_path_factory.mktemp("hard-head"), tiny_bert, method="head")
    return train(load_config(config, ["train.head.c_grid=[1.0]"])).run_dir


# -- the service: a poison request fails alone ----------------------------------------------


def test_poison_text_fails_alone_among_concurrent_good_requests(head_run):
    app, state = make_app([head_run], max_wait_ms=100, max_batch_size=64)
    with TestClient(app) as client:
        start = threading.Barrier(9)
        answers = {}

        def hit(i):
            body = b'{"texts": ["\\ud800"]}' if i == 4 else json.dumps({"texts": [f"The phone was great {i}"]}).encode()
            start.wait()
            answers[i] = client.post("/v1/classify", content=body, headers=JSON)

        threads = [threading.Thread(target=hit, args=(i,)) for i in range(9)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        poison = answers.pop(4)
        assert poison.status_code == 422 and poison.json()["error_type"] == "invalid_text"
        assert [r.status_code for r in answers.values()] == [200] * 8
        assert max(int(r.headers["X-Batch-Size"]) for r in answers.values()) > 1  # they really shared batches
        assert client.post("/v1/classify", json={"texts": ["still serving"]}).status_code == 200


def test_real_tokenizer_error_in_a_shared_batch_fails_only_its_request(head_run):
    """Past the request checks (a library caller), a text the tokenizer rejects still fails alone."""
    predictor = Predictor.load(head_run)
    calls = []

    def scored(texts):
        calls.append(len(texts))
        return predictor.predict_raw(texts)

    batcher = MicroBatcher(scored, max_batch_size=64, max_wait_ms=300, max_queue=100)
    futures = [batcher.submit([f"The phone was great {i}"]) for i in range(3)]
    bad = batcher.submit(["\ud800"])
    futures += [batcher.submit(["The lamp was awful"])]
    with pytest.raises(TypeError):
        bad.result(10)
    assert all(f.result(10).probabilities.shape == (1, 3) for f in futures)
    assert calls[0] == 5  # one shared batch failed first, then each request ran alone
    assert batcher.failures == 1 and batcher.depth == 0
    batcher.close()


def test_batch_that_raises_for_one_text_answers_the_others_in_that_batch():
    calls = []

    def model(texts):
        calls.append(list(texts))
        if "poison" in texts:
            raise ValueError("cannot score 'poison'")
        return np.array([[len(t), 1.0] for t in texts])

    batcher = MicroBatcher(model, max_batch_size=64, max_wait_ms=200, max_queue=100)
    good = [batcher.submit(["a" * (i + 1), "b"]) for i in range(4)]
    bad = batcher.submit(["poison"])
    more = batcher.submit(["zzz"])
    with pytest.raises(ValueError, match="poison"):
        bad.result(5)
    for i, future in enumerate(good):
        assert future.result(5).probabilities[:, 0].tolist() == [i + 1, 1]
    assert more.result(5).probabilities[0, 0] == 3
    assert len(calls[0]) == 10  # all six requests were in the batch that failed
    assert batcher.failures == 1 and batcher.depth == 0
    batcher.close()


def test_traceback_logged_once_per_distinct_error(caplog):
    def model(texts):
        raise ValueError(f"bad {texts[0][0]}")

    batcher = MicroBatcher(model, max_batch_size=1, max_wait_ms=0, max_queue=100)
    with caplog.at_level(logging.WARNING, logger="tuneforge.predict.batcher"):
        for text in ["x1", "x2", "x3", "y1"]:
            with pytest.raises(ValueError):
                batcher.predict([text], timeout=5)
    batcher.close()
    with_traceback = [r for r in caplog.records if r.exc_info]
    assert [r.getMessage() for r in with_traceback] == ["request failed: ValueError: bad x", "request failed: ValueError: bad y"]
    assert sum("failed again" in r.getMessage() for r in caplog.records) == 2
    assert batcher.failures == 4


def test_unexpected_500_is_counted_in_metrics(tfidf_run):
    from tuneforge.serve.app import ServiceState, create_app
    from tuneforge.serve.metrics import ServiceMetrics
    from tuneforge.serve.registry import ServedModel
    from tuneforge.serve.settings import ServeSettings

    predictor = Predictor.load(tfidf_run)

    def scored(texts):
        if "boom" in texts:
            raise RuntimeError("model exploded")
        return predictor.predict_raw(texts)

    state = ServiceState(settings=ServeSettings(), metrics=ServiceMetrics())
    app = create_app(state, load=lambda: {"m": ServedModel("m", predictor, MicroBatcher(scored, max_wait_ms=0))})
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post("/v1/classify", json={"texts": ["boom"]})
        assert r.status_code == 500 and r.json() == {"error": "internal error; see the server log", "error_type": "internal"}
        assert client.post("/v1/classify", json={"texts": ["fine"]}).status_code == 200
        metrics = client.get("/metrics").text
    assert 'tuneforge_requests_total{error_type="internal",route="/v1/classify",status="500"} 1.0' in metrics


@pytest.mark.parametrize(
    ("body", "error_type"),
    [
        (b'{"texts": ["ok", " \\n\\t "]}', "empty_text"),
        (b'{"texts": ["ok", "\\udfff tail"]}', "invalid_text"),
        (b'{"texts": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "json_too_deep"),
        (b"[" * 100_000 + b"]" * 100_000, "json_too_deep"),
    ],
)
def test_whitespace_surrogates_and_deep_json_are_4xx(tfidf_run, body, error_type):
    app, _ = make_app([tfidf_run])
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post("/v1/classify", content=body, headers=JSON)
        assert r.status_code in (400, 422) and r.json()["error_type"] == error_type, r.text
        if error_type != "json_too_deep":
            assert "texts[1]" in r.json()["error"]
        assert client.post("/v1/classify", json={"texts": ["The phone was great"]}).status_code == 200


# -- runs, predict and files ------------------------------------------------------------------


def test_broken_run_json_is_listed_as_unreadable_with_the_reason(tmp_path, monkeypatch, capsys):
    from tuneforge.rundir import RunDir

    RunDir.create(tmp_path, "good").update(status="complete", method="tfidf", started="2026-01-01")
    broken = {"as-array": b"[1, 2]", "as-null": b"null", "not-utf8": b'{"status": "\xff\xfe"}', "cut-off": b'{"status": "comp'}
    for name, content in broken.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.json").write_bytes(content)
    found = {r.path.name: r for r in list_runs(tmp_path)}
    assert len(found) == 5
    problems = {name: found[name].problem for name in broken}
    assert all(found[name].status == "unreadable" for name in broken)
    assert "expected a JSON object, got list" in problems["as-array"]
    assert "expected a JSON object, got NoneType" in problems["as-null"]
    assert "not UTF-8" in problems["not-utf8"]
    assert "unreadable" in problems["cut-off"]
    code, out, err = run_cli(monkeypatch, capsys, "runs", "--dir", tmp_path)
    assert code == 0, err
    lines = {line.split("\t")[0]: line for line in out.splitlines()}
    assert "\tunreadable\t" in lines["as-array"] and "got list" in lines["as-array"]
    assert "\tcomplete\t" in next(v for k, v in lines.items() if k.startswith("good"))


def test_predict_refuses_to_overwrite_its_input(monkeypatch, capsys, tmp_path, tfidf_run):
    src = tmp_path / "texts.csv"
    src.write_text("text\nThe phone was great\n")
    (tmp_path / "sub").mkdir()
    for output in (src, tmp_path / "sub" / ".." / "texts.csv"):
        code, _, err = run_cli(monkeypatch, capsys, "predict", tfidf_run, "--input", src, "--output", output)
        assert code == 2 and "is the input file" in err
    assert src.read_text() == "text\nThe phone was great\n"


def test_predict_keeps_input_columns_named_like_predictions(monkeypatch, capsys, tmp_path, tfidf_run):
    src = tmp_path / "in.csv"
    pd.DataFrame(
        {"text": ["The phone was great and wonderful.", "The lamp was awful"], "label": ["mine-1", "mine-2"], "score": [7, 8]}
    ).to_csv(src, index=False)
    dst = tmp_path / "out.csv"
    code, _, err = run_cli(monkeypatch, capsys, "predict", tfidf_run, "--input", src, "--output", dst)
    assert code == 0, err
    scored = pd.read_csv(dst)
    assert list(scored.columns[:5]) == ["text", "label", "score", "pred_label", "pred_score"]
    assert scored["label"].tolist() == ["mine-1", "mine-2"] and scored["score"].tolist() == [7, 8]
    assert scored["pred_label"].tolist() == ["positive", "negative"]


def test_stale_temporaries_of_a_killed_predict_are_removed(monkeypatch, capsys, tmp_path, tfidf_run):
    src = tmp_path / "in.csv"
    src.write_text("text\nThe phone was great\n")
    stale = tmp_path / ".out.csv.k1ll3d.tmp"
    stale.write_text("half written")
    other = tmp_path / ".other.csv.abc.tmp"  # another output's temporary: not ours to remove
    other.write_text("x")
    code, _, err = run_cli(monkeypatch, capsys, "predict", tfidf_run, "--input", src, "--output", tmp_path / "out.csv")
    assert code == 0, err
    assert not stale.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.csv.abc.tmp", "in.csv", "out.csv"]


def test_predict_encoding_option_reads_latin_1(monkeypatch, capsys, tmp_path, tfidf_run):
    src = tmp_path / "latin.csv"
    src.write_bytes("text\nThe caf\xe9 phone was great\n".encode("latin-1"))
    dst = tmp_path / "out.jsonl"
    code, _, err = run_cli(monkeypatch, capsys, "predict", tfidf_run, "--input", src, "--output", dst)
    assert code == 2 and f"{src}:2" in err and "--encoding" in err
    code, _, err = run_cli(monkeypatch, capsys, "predict", tfidf_run, "--input", src, "--output", dst, "--encoding", "latin-1")
    assert code == 0, err
    assert json.loads(dst.read_text(encoding="utf-8").splitlines()[0])["text"] == "The café phone was great"


def test_files_and_folders_respect_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        run_dir = train(load_config(write_config(tmp_path, None, method="tfidf"))).run_dir
        src = tmp_path / "in.csv"
        src.write_text("text\nThe phone was great\n")
        from tuneforge.predict.files import score_file

        score_file(Predictor.load(run_dir), src, tmp_path / "scored.csv")
    finally:
        os.umask(previous)
    modes = {p: p.stat().st_mode & 0o777 for p in [run_dir, *run_dir.rglob("*")]}
    assert modes[run_dir / "model"] == 0o755 and modes[run_dir / "run.json"] == 0o644
    assert {m for p, m in modes.items() if p.is_dir()} == {0o755}
    assert {m for p, m in modes.items() if p.is_file()} == {0o644}
    assert (tmp_path / "scored.csv").stat().st_mode & 0o777 == 0o644


def test_csv_with_utf8_byte_order_mark_trains(monkeypatch, capsys, tmp_path):
    bom = tmp_path / "excel.csv"  # the text column first: a BOM would otherwise glue itself to its name
    pd.read_csv(DATA / "reviews_train.csv")[["review", "sentiment"]].to_csv(bom, index=False, encoding="utf-8-sig")
    assert bom.read_bytes().startswith(b"\xef\xbb\xbfreview,")
    code, out, err = run_cli(monkeypatch, capsys, "-q", "train", write_config(tmp_path, None, method="tfidf"), "--set", f"data.train={bom}")
    assert code == 0, err
    assert "macro_f1" in out


# -- missing values in training data: exit 2 naming file, line and column --------------------


def _rows(n=20):
    return [{"review": f"good text {i}", "sentiment": "positive" if i % 2 else "negative"} for i in range(n)]


def _write(path, rows):
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        pd.DataFrame(rows).to_parquet(path)
    return path


@pytest.mark.parametrize(
    ("name", "broken", "where", "column"),
    [
        ("null-label.jsonl", {"review": "fine", "sentiment": None}, ":6:", "'sentiment'"),
        ("null-text.jsonl", {"review": None, "sentiment": "positive"}, ":6:", "'review'"),
        ("null-label.parquet", {"review": "fine", "sentiment": None}, ":row 6:", "'sentiment'"),
        ("null-text.parquet", {"review": None, "sentiment": "negative"}, ":row 6:", "'review'"),
    ],
)
def test_null_values_exit_2_naming_file_row_and_column(monkeypatch, capsys, tmp_path, name, broken, where, column):
    rows = _rows()
    rows[5] = broken
    path = _write(tmp_path / name, rows)
    code, _, err = run_cli(monkeypatch, capsys, "-q", "train", write_config(tmp_path, None, method="tfidf"), "--set", f"data.train={path}")
    assert code == 2 and f"{path}{where}" in err and f"column {column} is empty" in err, err


@pytest.mark.parametrize(
    ("header", "short", "column"), [("review,sentiment", "only text", "'sentiment'"), ("sentiment,review", "positive", "'review'")]
)
def test_csv_row_with_too_few_fields_exits_2_naming_line_and_column(monkeypatch, capsys, tmp_path, header, short, column):
    first = header.split(",")[0]
    lines = [",".join([r[first], r["sentiment" if first == "review" else "review"]]) for r in _rows()]
    lines.insert(5, short)
    path = tmp_path / "short.csv"
    path.write_text(header + "\n" + "\n".join(lines) + "\n")
    code, _, err = run_cli(monkeypatch, capsys, "-q", "train", write_config(tmp_path, None, method="tfidf"), "--set", f"data.train={path}")
    assert code == 2 and f"{path}:7:" in err and f"column {column} is empty" in err, err


# -- API keys --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", " , ", ",,"])
def test_blank_key_list_stops_the_start(monkeypatch, capsys, tfidf_run, value):
    monkeypatch.setenv("TUNEFORGE_API_KEYS", value)
    code, _, err = run_cli(monkeypatch, capsys, "serve", tfidf_run, "--port", "1")
    assert code == 2 and "TUNEFORGE_API_KEYS is set but holds no key" in err


def test_keys_file_without_keys_stops_the_start(tmp_path):
    from tuneforge.errors import ConfigError
    from tuneforge.serve.auth import load_key_digests

    keys = tmp_path / "keys"
    keys.write_text("# nobody filled this in\n\n")
    with pytest.raises(ConfigError, match="holds no key"):
        load_key_digests(str(keys), environ={})


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "myhost.example"])
def test_non_loopback_host_without_keys_needs_no_auth(monkeypatch, capsys, tfidf_run, host, caplog):
    from tuneforge.serve.server import build_service
    from tuneforge.serve.settings import ServeSettings

    monkeypatch.delenv("TUNEFORGE_API_KEYS", raising=False)
    with caplog.at_level(logging.WARNING, logger="tuneforge.serve.auth"):  # before the CLI replaces the log handlers
        app, state = build_service([str(tfidf_run)], ServeSettings(host=host), no_auth=True)
    assert state.key_digests == [] and "--no-auth: serving on" in caplog.text
    code, _, err = run_cli(monkeypatch, capsys, "serve", tfidf_run, "--host", host, "--port", "1")
    assert code == 2 and f"serving on {host} without API keys" in err and "--no-auth" in err
    monkeypatch.setenv("TUNEFORGE_API_KEYS", "k")
    build_service([str(tfidf_run)], ServeSettings(host=host))  # keys given: fine
    code, _, err = run_cli(monkeypatch, capsys, "serve", tfidf_run, "--host", host, "--no-auth", "--port", "1")
    assert code == 2 and "--no-auth was given but API keys are configured" in err


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_host_needs_no_keys(monkeypatch, tfidf_run, host):
    from tuneforge.serve.server import build_service
    from tuneforge.serve.settings import ServeSettings

    monkeypatch.delenv("TUNEFORGE_API_KEYS", raising=False)
    build_service([str(tfidf_run)], ServeSettings(host=host))


def test_bearer_scheme_is_case_insensitive(tfidf_run):
    app, _ = make_app([tfidf_run], keys=["s3cret"])
    with TestClient(app) as client:
        for header in ("Bearer s3cret", "bearer s3cret", "BEARER s3cret", "Bearer  s3cret "):
            assert client.post("/v1/classify", json={"texts": ["ok"]}, headers={"Authorization": header}).status_code == 200, header
        for header in ("Bearer", "Bearer ", "Basic s3cret", "s3cret", "Bearers3cret", "bearer wrong"):
            assert client.post("/v1/classify", json={"texts": ["ok"]}, headers={"Authorization": header}).status_code == 401, header


# -- smaller guarantees ------------------------------------------------------------------------


@pytest.mark.parametrize("output_dir", ["a-file", "/proc/tuneforge-cannot-be-here", "a-file/below"])
def test_bad_output_dir_exits_2(monkeypatch, capsys, tmp_path, output_dir):
    (tmp_path / "a-file").write_text("x")
    target = output_dir if output_dir.startswith("/") else str(tmp_path / output_dir)
    code, _, err = run_cli(
        monkeypatch, capsys, "-q", "train", write_config(tmp_path, None, method="tfidf"), "--set", f"output.dir={target}"
    )
    assert code == 2 and "output.dir" in err and "Traceback" not in err


def test_seed_beyond_numpy_range_exits_2(monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(
        monkeypatch, capsys, "-q", "train", write_config(tmp_path, None, method="tfidf"), "--set", "train.seed=1099511627776"
    )
    assert code == 2 and "train.seed" in err and "4294967295" in err and "Traceback" not in err


def test_sigterm_during_file_predict_removes_the_temporary_at_once(tmp_path, head_run):
    import signal
    import subprocess

    src = tmp_path / "big.csv"
    pd.DataFrame({"text": [f"The phone was great and wonderful number {i}" for i in range(40_000)]}).to_csv(src, index=False)
    dst = tmp_path / "out.csv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tuneforge.cli", "-q", "predict", str(head_run), "--input", str(src), "--output", str(dst)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 60
        while not list(tmp_path.glob(".out.csv.*.tmp")) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert list(tmp_path.glob(".out.csv.*.tmp")), "scoring never started"
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.csv"]  # no output, no temporary
    assert "Traceback" not in proc.stderr.read()


def test_repeat_filter_passes_one_identical_warning_per_window_and_counts_the_rest():
    from tuneforge.serve.logs import HideQueryString, RepeatFilter

    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    handler.addFilter(RepeatFilter(window=0.3))
    log = logging.getLogger("repeats-under-test")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        for _ in range(1000):
            log.error("accept failed: %s", "EMFILE")
        log.warning("another problem")
        log.info("info lines are never held back")
        log.info("info lines are never held back")
        time.sleep(0.35)
        log.error("accept failed: %s", "EMFILE")
    finally:
        log.removeHandler(handler)
    assert seen[:4] == ["accept failed: EMFILE", "another problem", "info lines are never held back", "info lines are never held back"]
    assert len(seen) == 5 and seen[4].startswith("accept failed: EMFILE [repeated 999 more times")
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d', ("c", "GET", "/x?api_key=s3cret", "1.1", 200), None
    )
    HideQueryString().filter(record)
    assert "s3cret" not in record.getMessage() and "/x?[query not logged]" in record.getMessage()


def test_connection_cap_defaults_fit_the_open_file_limit(monkeypatch):
    import resource

    from tuneforge.serve import connections

    for soft in (256, 1024, 4096, 1_048_576):
        monkeypatch.setattr(resource, "getrlimit", lambda _, s=soft: (s, s))
        cap = connections.default_max_connections()
        peak = connections.hard_ceiling(cap) + 2 * connections.accept_backlog(cap) + connections.FD_RESERVE
        assert 1 <= cap <= 1000 and peak <= soft and connections.check_file_limit(cap) is None
    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 1024))
    assert "serve.max_connections=5000" in connections.check_file_limit(5000)
