"""Data lineage for task recommend: hashed interactions and users, finding runs by rows or user id, forgetting them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from tuneforge.config import load_config
from tuneforge.engine.forget import forget
from tuneforge.engine.run import train
from tuneforge.errors import ConfigError, DataError
from tuneforge.lineage import matches, read_query, user_matches
from tuneforge.rundir import RunDir
from tuneforge.tasks.recommend.runtime import Recommender

from conftest import DATA, run_cli

N_USERS, N_ITEMS = 24, 20
REGISTERED_ONLY = "cust-registered-only-zoe"  # in the user table of the "cust" shop, no interactions


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEFORGE_CACHE", str(tmp_path / "cache"))


def _user(u: int, prefix: str) -> str:
    return f"{prefix}-{u:03d}-customer"


def _interactions(prefix: str, seed: int) -> pd.DataFrame:
    """Two taste groups walking through their half of the catalogue, with times (ids that could never be hex)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(N_USERS):
        items = list(range(0, 10)) if u % 2 == 0 else list(range(10, 20))
        start = int(rng.integers(0, len(items)))
        for step in range(6):
            rows.append({"user": _user(u, prefix), "item": f"sku-{items[(start + step) % 10]:04d}", "timestamp": 5000 + 7 * step + u})
    return pd.DataFrame(rows)


def _config(folder, prefix: str = "cust", seed: int = 0):
    folder.mkdir(parents=True, exist_ok=True)
    _interactions(prefix, seed).to_csv(folder / "interactions.csv", index=False)
    pd.DataFrame([{"item": f"sku-{i:04d}", "title": f"thing {i}"} for i in range(N_ITEMS)]).to_csv(folder / "items.csv", index=False)
    users = [{"user": _user(u, prefix), "region": "north" if u % 3 else "south"} for u in range(N_USERS)]
    registered = REGISTERED_ONLY.replace("cust", prefix, 1)
    pd.DataFrame([*users, {"user": registered, "region": "north"}]).to_csv(folder / "users.csv", index=False)
    raw = {
        "task": "recommend",
        "data": {"train": str(folder / "interactions.csv")},
        "recommend": {
            "method": "ease",
            "ease_lambda": 10.0,
            "k": [5, 10],
            "items": str(folder / "items.csv"),
            "users": str(folder / "users.csv"),
        },
        "output": {"dir": str(folder.parent / "runs")},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


@pytest.fixture
def rec_run(tmp_path):
    return train(load_config(_config(tmp_path / "shop"))).run_dir


def _listed(out: str) -> set[str]:
    """The run names of a piped `tuneforge runs` listing (run names can be prefixes of one another)."""
    return {line.split("\t")[0] for line in out.splitlines()[1:]}


def _query_file(path, frame: pd.DataFrame, *, with_time: bool = True):
    columns = ["user", "item", "timestamp"] if with_time else ["user", "item"]
    frame[columns].to_csv(path, index=False)
    return path


def test_lineage_keeps_hashes_of_interactions_users_and_sources_never_ids(rec_run, tmp_path):
    text = (rec_run / "lineage.json").read_text()
    lineage = json.loads(text)
    source = pd.read_csv(tmp_path / "shop" / "interactions.csv")
    for raw in [*source["user"].unique(), *source["item"].unique(), REGISTERED_ONLY]:
        assert raw not in text
    assert lineage["row_identity"] == ["user", "item", "timestamp"]
    splits = RunDir(rec_run).splits()
    assert {k: len(v) for k, v in lineage["rows"].items()} == {k: len(v) for k, v in splits.items()}
    assert set(lineage["users"]) == {"train", "validation", "test", "user_table"}
    assert len(lineage["users"]["train"]) == N_USERS and len(lineage["users"]["user_table"]) == N_USERS + 1
    for name in ("interactions.csv", "items.csv", "users.csv"):
        assert len(lineage["sources"][str(tmp_path / "shop" / name)]) == 64  # sha-256 of each source file


def test_trained_on_and_user_find_the_run_and_not_an_unrelated_one(rec_run, tmp_path, monkeypatch, capsys):
    other = train(load_config(_config(tmp_path / "elsewhere", prefix="other", seed=1))).run_dir
    text_run = train(
        load_config(_text_config(tmp_path, runs=tmp_path / "runs"))
    ).run_dir  # a text run beside them: searched its own way, never crashes the listing
    seen = RunDir(rec_run).splits()["test"].iloc[:2]
    query = _query_file(tmp_path / "asked.csv", seen)
    code, out, err = run_cli(monkeypatch, capsys, "runs", "--dir", tmp_path / "runs", "--trained-on", query)
    assert code in (0, None) and _listed(out) == {rec_run.name} and "saw 2 test" in out  # not the other shop, not the text run
    asked = seen["user"].iloc[0]
    code, out, _ = run_cli(monkeypatch, capsys, "runs", "--dir", tmp_path / "runs", "--user", asked)
    assert _listed(out) == {rec_run.name} and "1 of the users" in out
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{REGISTERED_ONLY}\nnobody-at-all\n")
    code, out, _ = run_cli(monkeypatch, capsys, "runs", "--dir", tmp_path / "runs", "--user", ids)
    assert _listed(out) == {rec_run.name}  # known from the user table alone
    code, out, _ = run_cli(monkeypatch, capsys, "runs", "--dir", tmp_path / "runs", "--user", "nobody-at-all")
    assert not _listed(out) & {rec_run.name, other.name, text_run.name}
    assert user_matches(RunDir(text_run), [asked]) is None  # text rows name no user


def _text_config(tmp_path, runs):
    raw = {
        "data": {"train": str(DATA / "reviews_train.csv"), "text_column": "review", "label_column": "sentiment"},
        "train": {"method": "tfidf"},
        "output": {"dir": str(runs)},
    }
    path = tmp_path / "text.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_forget_rows_retrains_without_them_and_supersedes(rec_run, tmp_path, monkeypatch, capsys):
    old = RunDir(rec_run)
    gone = old.splits()["train"].iloc[[0, 5, 9]]
    query = _query_file(tmp_path / "gone.csv", gone)
    code, out, err = run_cli(monkeypatch, capsys, "forget", rec_run, "--rows", query)
    assert code in (0, None) and "removed 3 row(s) (train 3, validation 0, test 0)" in " ".join(err.split())
    new = RunDir(old.info()["superseded_by"])
    assert new.info()["forgets"]["rows_removed"] == {"train": 3, "validation": 0, "test": 0}
    assert new.info()["status"] == "complete" and new.read_config().train.seed == old.read_config().train.seed
    for name, frame in old.splits().items():
        expect = len(frame) - (3 if name == "train" else 0)
        assert len(new.splits()[name]) == expect  # nothing else moved between splits
    assert sum(matches(new, read_query(new, str(query))).values()) == 0
    assert sum(matches(old, read_query(old, str(query))).values()) == 3
    assert gone["user"].iloc[0] not in json.dumps(new.info())  # counts recorded, never the rows
    assert not [p for p in (tmp_path / "runs").iterdir() if p.name.startswith(".forget")]


def test_forget_users_makes_them_cold_to_the_new_run(rec_run, tmp_path, monkeypatch, capsys):
    old = RunDir(rec_run)
    asked = _user(4, "cust")
    before = old.splits()
    theirs = sum(int((frame["user"] == asked).sum()) for frame in before.values())
    personal, known = Recommender.load(rec_run).recommend(user=asked, k=5)
    assert known and theirs == 6
    ids = tmp_path / "forget.csv"
    pd.DataFrame({"customer": [asked, REGISTERED_ONLY, "never-a-customer"]}).to_csv(ids, index=False)
    code, out, err = run_cli(monkeypatch, capsys, "forget", rec_run, "--users", ids, "--user-column", "customer")
    assert code in (0, None) and f"removed {theirs} row(s)" in " ".join(err.split())
    new = RunDir(old.info()["superseded_by"])
    forgets = new.info()["forgets"]
    assert forgets["users_forgotten"] == 2 and forgets["users_not_found"] == 1 and forgets["user_table_rows"] == 2
    assert sum(forgets["rows_removed"].values()) == theirs
    recommender = Recommender.load(new.path)
    assert asked not in recommender.catalog.users and REGISTERED_ONLY not in recommender.catalog.users
    for user in (asked, REGISTERED_ONLY):
        ranked, known = recommender.recommend(user=user, k=5)
        stranger, _ = recommender.recommend(user="someone-never-seen", k=5)
        assert not known and ranked == stranger  # a new user to it: the same list any stranger gets
    assert asked not in (new.model_dir / "catalog.json").read_text()
    assert all(asked not in set(frame["user"]) for frame in new.splits().values())
    others = {name: int((frame["user"] != asked).sum()) for name, frame in before.items()}
    assert {name: len(frame) for name, frame in new.splits().items()} == others
    assert user_matches(new, [asked]) == {"train": 0, "validation": 0, "test": 0, "user_table": 0}
    code, out, _ = run_cli(monkeypatch, capsys, "runs", "--dir", tmp_path / "runs", "--user", asked)
    assert _listed(out) == {old.name}


def test_bad_requests_say_what_is_wrong(rec_run, tmp_path, monkeypatch, capsys):
    with pytest.raises(DataError, match="'nobody' not known to .*nothing to forget"):
        forget(rec_run, users=["nobody"])
    code, _, err = run_cli(monkeypatch, capsys, "forget", rec_run, "--users", "nobody")
    assert code not in (0, None) and "not known to" in " ".join(err.split()) and "Traceback" not in err
    no_time = _query_file(tmp_path / "no_time.csv", RunDir(rec_run).splits()["train"].iloc[:2], with_time=False)
    with pytest.raises(DataError, match=r"user, item and time, and column 'timestamp' \(recommend.time_column\) is missing"):
        read_query(RunDir(rec_run), str(no_time))
    code, _, err = run_cli(monkeypatch, capsys, "forget", rec_run)
    assert code not in (0, None) and "--rows" in err and "--users" in err
    code, out, err = run_cli(monkeypatch, capsys, "runs", "--dir", tmp_path / "runs", "--trained-on", "just some words")
    assert not _listed(out) and "is not a file" in " ".join(err.split())
    assert "superseded_by" not in RunDir(rec_run).info()  # nothing was retrained by a refused request
    text_run = train(load_config(_text_config(tmp_path, runs=tmp_path / "text-runs"))).run_dir
    with pytest.raises(ConfigError, match="rows of a classify run name no user"):
        forget(text_run, users=["someone"])
