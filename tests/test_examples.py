"""Every recipe in examples/ parses; the cheap ones run."""

from pathlib import Path

import pytest

from tuneforge.config import load_config
from tuneforge.engine.run import train

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.yaml"))


def test_there_are_examples():
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_parses(path):
    config = load_config(path)
    if not config.data.train.startswith("bundled:"):
        assert Path(config.data.train).is_file()


def test_tfidf_example_runs_on_real_data(tmp_path):
    result = train(load_config(Path(__file__).parent.parent / "examples" / "bbc-news-tfidf.yaml", [f"output.dir={tmp_path}"]))
    assert result.metrics["accuracy"] > 0.9  # real BBC News test split; the baseline is strong on topics


def test_own_csv_example_runs_with_tfidf(tmp_path):
    path = Path(__file__).parent.parent / "examples" / "own-csv.yaml"
    result = train(load_config(path, ["train.method=tfidf", f"output.dir={tmp_path}"]))
    assert result.metrics["n"] == 15


@pytest.mark.parametrize("path", [p for p in EXAMPLES if "tune" in p.name], ids=lambda p: p.name)
def test_tune_examples_have_valid_spaces(path):
    from tuneforge.tune.space import check_space

    check_space(load_config(path))


def test_tfidf_tune_example_runs(tmp_path):
    from tuneforge.tune.study import tune

    path = Path(__file__).parent.parent / "examples" / "reviews-tfidf-tune.yaml"
    result = tune(load_config(path, [f"output.dir={tmp_path}"]), trials=3)
    assert result.finished == 3 and (result.study_dir / "best.yaml").is_file()


def test_recommend_example_runs_on_real_movielens(tmp_path):
    """The item-item model on MovieLens-100K (no encoder needed): beats most-popular on the same split by far."""
    path = Path(__file__).parent.parent / "examples" / "movielens-recommend.yaml"
    ease = train(load_config(path, ["recommend.method=ease", f"output.dir={tmp_path}"]))
    popular = train(load_config(path, ["recommend.method=popular", f"output.dir={tmp_path}"]))
    assert ease.metrics["users"] == popular.metrics["users"] == 943
    assert ease.metrics["ndcg@10"] > 1.5 * popular.metrics["ndcg@10"]
    assert ease.metrics["cold_items"]["items"] > 50
