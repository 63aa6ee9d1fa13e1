"""task: recommend on tiny synthetic interaction tables: data errors, splits, metrics, methods, cold start, CLI, service, tuning."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import yaml
from fastapi.testclient import TestClient

from tuneforge.config import load_config
from tuneforge.engine.run import train
from tuneforge.errors import ConfigError, DataError
from tuneforge.predict.predictor import Predictor
from tuneforge.rundir import RunDir
from tuneforge.tasks.recommend.metrics import evaluate_rankings, ranking_metrics
from tuneforge.tasks.recommend.runtime import Recommender

from conftest import run_cli
from serve_helpers import make_app

N_USERS, N_ITEMS = 40, 30
GROUPS = {"a": range(0, 15), "b": range(15, 30)}  # users of group a like items 0-14, of group b items 15-29


def _interactions(seed: int = 0) -> pd.DataFrame:
    """Users who stick to their group's items, and within it walk forward through them (a sequence to learn)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(N_USERS):
        group = "a" if u % 2 == 0 else "b"
        items = list(GROUPS[group])
        start = int(rng.integers(0, len(items)))
        for step in range(8):
            rows.append(
                {
                    "user": f"u{u}",
                    "item": f"i{items[(start + step) % len(items)]}",
                    "rating": float(rng.integers(1, 6)),
                    "timestamp": 1000 + 10 * step,
                }
            )
    return pd.DataFrame(rows)


def _item_table(path):
    rows = [
        {"item": f"i{i}", "title": f"{'great phone' if i < 15 else 'terrible battery'} {i}", "kind": "a" if i < 15 else "b"}
        for i in range(N_ITEMS)
    ]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _user_table(path):
    pd.DataFrame(
        [{"user": f"u{u}", "gender": "F" if u % 4 < 2 else "M"} for u in range(N_USERS)] + [{"user": "registered-only", "gender": "F"}]
    ).to_csv(path, index=False)
    return path


def _config(tmp_path, model=None, *, items=True, users=True, **recommend):
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = tmp_path / "interactions.csv"
    if not data.exists():
        _interactions().to_csv(data, index=False)
    raw = {
        "task": "recommend",
        "data": {"train": str(data)},
        "recommend": {"method": "ease", "ease_lambda": 10.0, "min_user_interactions": 3, "k": [5, 10], **recommend},
        "model": {"name": str(model) if model else "minilm-l6"},
        "output": {"dir": str(tmp_path / "runs")},
    }
    if items:
        raw["recommend"]["items"] = str(_item_table(tmp_path / "items.csv"))
    if users:
        raw["recommend"]["users"] = str(_user_table(tmp_path / "users.csv"))
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


# -- data --------------------------------------------------------------------------------------


def test_bad_cells_name_file_line_and_column(tmp_path):
    path = _config(tmp_path, users=False, items=False)
    data = tmp_path / "interactions.csv"
    lines = data.read_text().splitlines()
    lines[3] = lines[3].replace(lines[3].split(",")[2], "lots", 1)
    data.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"interactions\.csv:4: column 'rating': 'lots' is not a number"):
        train(load_config(path))


def test_missing_columns_name_the_setting(tmp_path):
    path = _config(tmp_path, users=False, items=False)
    with pytest.raises(DataError, match=r"no column 'product' \(recommend.item_column\)"):
        train(load_config(path, ["recommend.item_column=product"]))
    with pytest.raises(DataError, match=r"recommend.user_column"):
        train(load_config(path, ["recommend.user_column=customer"]))


def test_threshold_repeats_and_sparse_users_are_reported_not_dropped_silently(tmp_path):
    frame = _interactions()
    extra = pd.DataFrame(
        [
            {"user": "lonely", "item": "i3", "rating": 5.0, "timestamp": 5},
            {"user": "u0", "item": frame.loc[0, "item"], "rating": 5.0, "timestamp": 9999},
        ]
    )
    tmp_path.mkdir(parents=True, exist_ok=True)
    pd.concat([frame, extra]).to_csv(tmp_path / "interactions.csv", index=False)
    path = _config(tmp_path, users=False, items=False, positive_threshold=2.0)
    run = RunDir(train(load_config(path)).run_dir)
    report = run.read_data_report()
    assert report["below_threshold"] == int((frame["rating"] < 2).sum())
    assert report["repeated_pairs"] >= 1
    assert report["users_too_few_interactions"] == 1 and report["interactions_of_those_users"] == 1
    splits = run.splits()
    assert "lonely" in set(splits["train"]["user"]) and "lonely" not in set(splits["test"]["user"])


# -- splits ------------------------------------------------------------------------------------


def _split(kind, **settings):
    from tuneforge.config import RecommendConfig
    from tuneforge.tasks.recommend.split import split_interactions

    frame = _interactions().assign(source="x")
    report: dict = {}
    parts = split_interactions(frame, RecommendConfig(split=kind, **settings), seed=1, report=report)
    return frame, parts, report


def test_leave_last_out_holds_out_each_users_last_and_breaks_time_ties_by_file_order():
    frame, parts, report = _split("leave-last-out")
    last = frame.groupby("user").tail(1).set_index("user")["item"]
    test = parts["test"].set_index("user")["item"]
    assert (test.sort_index() == last.sort_index()).all()
    assert len(parts["validation"]) == N_USERS and report["split"] == "leave-last-out"
    tied = frame.copy()
    tied["timestamp"] = 1000  # every interaction at one second: the later line is the later one
    from tuneforge.config import RecommendConfig
    from tuneforge.tasks.recommend.split import split_interactions

    again = split_interactions(tied.assign(source="x"), RecommendConfig(), seed=1, report={})
    assert (again["test"].set_index("user")["item"].sort_index() == last.sort_index()).all()


@pytest.mark.parametrize("kind", ["holdout", "time-cut"])
def test_other_splits_partition_the_interactions(kind):
    frame, parts, _ = _split(kind)
    keys = [set(zip(p["user"], p["item"])) for p in parts.values()]
    assert sum(len(k) for k in keys) == len(frame)
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    if kind == "time-cut":
        assert parts["train"]["timestamp"].max() <= parts["validation"]["timestamp"].min() <= parts["test"]["timestamp"].min()


def test_cold_items_never_reach_training():
    _, parts, report = _split("leave-last-out", cold_items=0.2)
    cold = set(parts["test"].loc[parts["test"]["cold"], "item"])
    assert len(cold) == report["cold_items"] == 6
    assert not cold & set(parts["train"]["item"]) and not cold & set(parts["validation"]["item"])


# -- metrics -----------------------------------------------------------------------------------


def test_ranking_metrics_by_hand():
    # user 1: held-out item at position 0 and 3; user 2: at position 12 (a miss at k=10)
    m = ranking_metrics([np.array([0, 3]), np.array([12])], [10])
    assert m["hr@10"] == 0.5
    assert m["recall@10"] == pytest.approx(0.5)
    assert m["ndcg@10"] == pytest.approx(((1 + 1 / np.log2(5)) / (1 + 1 / np.log2(3))) / 2, abs=1e-6)
    assert m["map@10"] == pytest.approx((1 + 2 / 4) / 2 / 2, abs=1e-6)


def test_ties_never_flatter_a_model_that_knows_nothing():
    n_users, n_items = 200, 100
    seen = sp.csr_matrix((n_users, n_items))
    targets = {u: np.array([u % n_items]) for u in range(n_users)}
    m = evaluate_rankings(lambda rows: np.zeros((len(rows), n_items)), seen, targets, [10], seed=3)
    assert 0.03 < m["hr@10"] < 0.2  # chance is 0.1; a "first index wins" rule would give 0.1 only by luck of the ids


def test_seen_items_are_not_candidates():
    seen = sp.csr_matrix(np.array([[1, 1, 0, 0]]))
    scores = np.array([[9.0, 8.0, 1.0, 2.0]])
    m = evaluate_rankings(lambda rows: scores[rows], seen, {0: np.array([2])}, [1, 2], seed=0)
    assert m["hr@1"] == 0.0 and m["hr@2"] == 1.0


# -- methods, end to end -----------------------------------------------------------------------


def test_ease_learns_the_groups_and_beats_popular(tmp_path):
    path = _config(tmp_path, items=False, users=False)
    ease = train(load_config(path))
    popular = train(load_config(path, ["recommend.method=popular"]))
    assert ease.metrics["hr@10"] > popular.metrics["hr@10"] + 0.2
    info = RunDir(ease.run_dir).info()
    assert info["task"] == "recommend" and info["method"] == "ease" and info["status"] == "complete"
    from tuneforge.rundir import list_runs

    listed = {r.method: r for r in list_runs(ease.run_dir.parent)}
    assert listed["ease"].metric_name == "ndcg@10" and listed["ease"].metric == ease.metrics["ndcg@10"]
    assert (ease.run_dir / "eval" / "ranking_metrics.png").is_file() and "Results on test" in (ease.run_dir / "model_card.md").read_text()


@pytest.mark.parametrize("method", ["als", "bpr"])
def test_matrix_factorisation_through_implicit(tmp_path, method):
    pytest.importorskip("implicit")
    result = train(load_config(_config(tmp_path, items=False, users=False), [f"recommend.method={method}", "recommend.factors=8"]))
    assert result.metrics["users"] == N_USERS and 0 <= result.metrics["ndcg@10"] <= 1
    recommender = Recommender.load(result.run_dir)
    ranked, known = recommender.recommend(user="u0", k=5)
    assert (
        known
        and len(ranked) == 5
        and not {i for i, _ in ranked}
        & set(recommender.catalog.items[j] for j in recommender.history(recommender.catalog.user_index["u0"]))
    )


def test_auto_tries_every_method_on_validation_and_keeps_the_best(tmp_path, tiny_bert):
    result = train(load_config(_config(tmp_path, tiny_bert), ["recommend.method=auto", "recommend.factors=8"]))
    table = result.train_info["validation_table"]
    methods = {r["method"] for r in table}
    assert {"popular", "ease", "content", "hybrid"} <= methods
    best = max(table, key=lambda r: r["ndcg@10"])
    assert result.train_info["method"] == best["method"] == RunDir(result.run_dir).info()["method"] or best["ndcg@10"] == max(
        r["ndcg@10"] for r in table if r["method"] == result.train_info["method"]
    )
    assert result.train_info["best_validation_ndcg@10"] == best["ndcg@10"]
    assert "| popular |" in (result.run_dir / "model_card.md").read_text()


def test_hybrid_recommends_new_items_that_collaborative_filtering_cannot(tmp_path, tiny_bert):
    path = _config(tmp_path, tiny_bert, cold_items=0.2)
    hybrid = train(load_config(path, ["recommend.method=hybrid", "recommend.blend_weight=0.1"]))
    ease = train(load_config(path, ["recommend.method=ease"]))
    new_h = hybrid.metrics["cold_items"]["among_new_items"]
    new_e = ease.metrics["cold_items"]["among_new_items"]
    assert new_h["ndcg@10"] > new_e["ndcg@10"]
    recommender = Recommender.load(hybrid.run_dir)
    cold = set(RunDir(hybrid.run_dir).splits()["test"].query("cold")["item"])
    scores = recommender.score_users(np.arange(len(recommender.catalog.users)))
    cold_columns = [recommender.catalog.item_index[i] for i in cold]
    assert np.abs(scores[:, cold_columns]).sum() > 0  # borrowed from content neighbours, not all zero


def test_new_users_get_their_segments_favourites_then_personal_items(tmp_path):
    result = train(load_config(_config(tmp_path, items=False)))
    recommender = Recommender.load(result.run_dir)
    registered, known = recommender.recommend(user="registered-only", k=3)
    assert known  # in the user table: a segment, no history
    segment = recommender.user_segment[recommender.catalog.user_index["registered-only"]]
    favourites = (
        recommender.model.arrays["segment_popularity"][segment] + 1e-6 * recommender.model.arrays["popularity"]
    )  # ties: overall favourite
    assert [i for i, _ in registered] == [recommender.catalog.items[j] for j in np.argsort(-favourites, kind="stable")[:3]]
    stranger, known = recommender.recommend(user="nobody", k=3)
    assert not known and stranger
    described, known = recommender.recommend(user="nobody", segment={"gender": "F"}, k=3)
    assert not known and [i for i, _ in described] == [i for i, _ in registered]  # "registered-only" is F too
    with pytest.raises(DataError, match="segment.shoe_size: not a segment column"):
        recommender.recommend(user="nobody", segment={"shoe_size": "9"})
    personal, _ = recommender.recommend(user="nobody", items=["i20", "i21", "i22"], k=5)
    assert all(int(i[1:]) >= 15 for i, _ in personal)  # a group-b session gets group-b items


def test_slices_and_quality_figures_are_in_metrics(tmp_path):
    result = train(load_config(_config(tmp_path, items=False)))
    metrics = json.loads((result.run_dir / "eval" / "metrics.json").read_text())
    assert set(metrics["slices"]["gender"]) == {"F", "M"}
    assert sum(v["users"] for v in metrics["slices"]["activity"].values()) == metrics["users"]
    for key in ("coverage@10", "novelty@10", "popularity_percentile@10"):
        assert key in metrics


# -- using a run -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ease_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rec")
    return train(load_config(_config(tmp))).run_dir


def test_cli_recommend_similar_filters_and_file_scoring(ease_run, tmp_path, monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "recommend", ease_run, "--user", "u0", "--k", "3", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code in (0, None) and len(rows) == 3 and [r["rank"] for r in rows] == [1, 2, 3]
    code, out, _ = run_cli(monkeypatch, capsys, "recommend", ease_run, "--items", "i1,i2", "--filter", "kind=b", "--json")
    assert all(json.loads(line)["kind"] == "b" for line in out.splitlines())
    code, out, _ = run_cli(monkeypatch, capsys, "recommend", ease_run, "--item", "i1", "--k", "2", "--json")
    assert len(out.splitlines()) == 2
    users = tmp_path / "users.csv"
    users.write_text("user,note\nu0,x\nstranger,y\n")
    code, out, _ = run_cli(monkeypatch, capsys, "recommend", ease_run, "-i", users, "-o", tmp_path / "recs.csv", "--k", "4")
    scored = pd.read_csv(tmp_path / "recs.csv")
    assert list(scored.columns) == ["user", "note", "recommended", "scores", "known_user"]
    assert scored["known_user"].tolist() == [True, False] and all(len(r.split("|")) == 4 for r in scored["recommended"])
    code, _, err = run_cli(monkeypatch, capsys, "recommend", ease_run, "--item", "nope")
    assert code == 2 and "unknown item id 'nope'" in err


def test_text_commands_refuse_a_recommender_clearly(ease_run):
    with pytest.raises(ConfigError, match="does not score texts; use `tuneforge recommend`"):
        Predictor.load(ease_run)


def test_evaluate_on_a_new_interactions_file(ease_run, tmp_path, monkeypatch, capsys):
    fresh = tmp_path / "fresh.csv"
    pd.DataFrame(
        [{"user": "u0", "item": "i5", "rating": 4, "timestamp": 99999}, {"user": "u1", "item": "i20", "rating": 4, "timestamp": 99999}]
    ).to_csv(fresh, index=False)
    code, out, _ = run_cli(monkeypatch, capsys, "evaluate", ease_run, "--data", fresh)
    assert code in (0, None) and "hr@10" in out
    assert json.loads((ease_run / "eval" / "fresh" / "metrics.json").read_text())["users"] == 2


def test_service_recommend_and_similar(ease_run):
    app, _ = make_app([ease_run])
    with TestClient(app) as client:
        ok = client.post("/v1/recommend", json={"user": "u1", "k": 4})
        assert ok.status_code == 200 and ok.json()["known_user"] and len(ok.json()["items"]) == 4
        assert "X-Batch-Size" in ok.headers
        session = client.post("/v1/recommend", json={"items": ["i16", "i17"], "k": 3, "filters": {"kind": "b"}}).json()
        assert not session["known_user"] and all(r["attributes"]["kind"] == "b" for r in session["items"])
        newcomer = client.post("/v1/recommend", json={"user": "brand-new", "segment": {"gender": "M"}, "k": 3}).json()
        assert not newcomer["known_user"] and len(newcomer["items"]) == 3
        for body, where in (
            ({"items": ["nope"]}, "unknown item id 'nope'"),
            ({"user": "u1", "filters": {"colour": "red"}}, "no such item attribute"),
            ({"k": 3}, "give a user id"),
            ({"user": "u1", "k": 0}, "k:"),
            ({"user": "u1", "surprise": 1}, "surprise"),
        ):
            bad = client.post("/v1/recommend", json=body)
            assert bad.status_code == 422 and where in bad.json()["error"], (body, bad.json())
        similar = client.post("/v1/similar", json={"item": "i3", "k": 2})
        assert similar.status_code == 200 and len(similar.json()["items"]) == 2
        assert client.post("/v1/similar", json={"item": "zzz"}).status_code == 422
        assert client.post("/v1/classify", json={"texts": ["x"]}).status_code == 404
        schema = client.get("/openapi.json").json()
        assert {"/v1/recommend", "/v1/similar"} <= set(schema["paths"])
        assert client.get("/v1/models").json()["models"][0]["task"] == "recommend"


def test_popular_model_has_no_similar_items(tmp_path):
    run = train(load_config(_config(tmp_path, items=False, users=False), ["recommend.method=popular"])).run_dir
    app, _ = make_app([run])
    with TestClient(app) as client:
        answer = client.post("/v1/similar", json={"item": "i3"})
        assert answer.status_code == 422 and "no notion of similar items" in answer.json()["error"]


def test_tune_searches_recommender_settings(tmp_path):
    from tuneforge.tune.study import tune

    path = _config(tmp_path, items=False, users=False)
    raw = yaml.safe_load(path.read_text())
    raw["tune"] = {"space": {"recommend.ease_lambda": {"low": 1, "high": 100, "log": True}}, "trials": 2, "sampler": "random", "seed": 0}
    path.write_text(yaml.safe_dump(raw))
    result = tune(load_config(path))
    assert result.finished == 2 and result.best_value is not None
    best = json.loads((result.study_dir / "best.json").read_text())
    assert best["metric"] == "ndcg@10" and "test_hr@10" in best
