import json

import pandas as pd
import pytest

from tuneforge.config import DataConfig
from tuneforge.data.clean import normalize_text
from tuneforge.data.prepare import prepare_data
from tuneforge.data.read import read_table
from tuneforge.errors import DataError
from tuneforge.tasks import get_task

from conftest import DATA

CLASSIFY = get_task("classify")


def _cfg(train, **kw):
    return DataConfig(train=str(train), text_column=kw.pop("text_column", "review"), label_column=kw.pop("label_column", "sentiment"), **kw)


def _csv(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_rows_keep_file_and_line_even_with_multiline_fields():
    frame, blank = read_table(DATA / "reviews_train.csv", text_column="review", label_column="sentiment")
    assert len(frame) == 61 and blank == 0
    assert frame.loc[4, "source"].endswith("reviews_train.csv:6")  # header is line 1
    assert frame.loc[5, "source"].endswith("reviews_train.csv:8")  # row 4 spans two lines


def test_formats_agree(tmp_path):
    csv_frame, _ = read_table(DATA / "reviews_test.csv", text_column="review", label_column="sentiment")
    pq_path = tmp_path / "test.parquet"
    pd.DataFrame({"review": csv_frame["text"], "sentiment": csv_frame["label"]}).to_parquet(pq_path)
    pq_frame, _ = read_table(pq_path, text_column="review", label_column="sentiment")
    jsonl = tmp_path / "test.jsonl"
    jsonl.write_text("".join(json.dumps({"review": t, "sentiment": lab}) + "\n" for t, lab in zip(csv_frame["text"], csv_frame["label"])))
    jl_frame, _ = read_table(jsonl, text_column="review", label_column="sentiment")
    assert csv_frame["text"].tolist() == pq_frame["text"].tolist() == jl_frame["text"].tolist()
    assert pq_frame.loc[2, "source"].endswith("test.parquet:row 3")


def test_missing_column_names_file_and_columns(tmp_path):
    path = _csv(tmp_path, "body,sentiment\nhello,positive\n")
    with pytest.raises(DataError) as info:
        read_table(path, text_column="review", label_column="sentiment")
    message = str(info.value)
    assert str(path) in message and "'review' not found" in message and "body" in message and "data.text_column" in message


def test_empty_text_names_file_line_and_column(tmp_path):
    path = _csv(tmp_path, "review,sentiment\ngood stuff,positive\n   ,negative\nbad stuff,negative\n")
    with pytest.raises(DataError, match=rf"{path}:3: column 'review' is empty"):
        prepare_data(_cfg(path), seed=0, task=CLASSIFY)


def test_empty_text_can_be_dropped_and_is_counted(tmp_path):
    rows = "".join(f"text {i} {lab},{lab}\n" for i in range(10) for lab in ("a", "b"))
    path = _csv(tmp_path, "review,sentiment\n" + rows + "<br>,a\n")
    data = prepare_data(_cfg(path, empty_text="drop"), seed=0, task=CLASSIFY)
    report = data.report["files"]["train"]
    assert report["removed"]["empty_text"] == 1
    assert report["examples"]["empty_text"] == [f"{path}:22"]


def test_missing_label_is_an_error(tmp_path):
    path = _csv(tmp_path, "review,sentiment\ngood,positive\nbad,\n")
    with pytest.raises(DataError, match=rf"{path}:3: column 'sentiment' is empty"):
        prepare_data(_cfg(path), seed=0, task=CLASSIFY)


def test_label_never_seen_in_training(tmp_path):
    test = _csv(tmp_path, "review,sentiment\nsomething,positive\nother,sarcastic\n", "test.csv")
    with pytest.raises(DataError) as info:
        prepare_data(_cfg(DATA / "reviews_train.csv", test=str(test)), seed=0, task=CLASSIFY)
    message = str(info.value)
    assert f"{test}:3" in message and "'sarcastic' never appears in the training data" in message and "column 'sentiment'" in message


def test_undecodable_bytes_name_line_and_column(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("review,sentiment\nfine,positive\ncaf\xe9 ok,neutral\n".encode("latin-1"))
    with pytest.raises(DataError) as info:
        read_table(path, text_column="review", label_column="sentiment")
    message = str(info.value)
    assert f"{path}:3" in message and "column 4" in message and "data.encoding" in message
    frame, _ = read_table(path, text_column="review", label_column="sentiment", encoding="latin-1")
    assert frame.loc[1, "text"] == "café ok"


def test_bad_jsonl_line_and_ragged_csv(tmp_path):
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('{"review": "ok", "sentiment": "a"}\n{"review": "broken"\n')
    with pytest.raises(DataError, match=rf"{jsonl}:2: invalid JSON"):
        read_table(jsonl, text_column="review", label_column="sentiment")
    ragged = _csv(tmp_path, "review,sentiment\na,b,c\n")
    with pytest.raises(DataError, match=rf"{ragged}:2: 3 fields but the header has 2"):
        read_table(ragged, text_column="review", label_column="sentiment")


def test_unknown_extension_and_missing_file(tmp_path):
    with pytest.raises(DataError, match="cannot tell the format"):
        read_table(_csv(tmp_path, "x", "data.xlsx"))
    with pytest.raises(DataError, match="data file not found"):
        read_table(tmp_path / "nope.csv")


def test_cleaning_counts_what_it_removed_and_changed():
    data = prepare_data(
        _cfg(DATA / "reviews_train.csv", test=str(DATA / "reviews_test.csv"), validation=str(DATA / "reviews_validation.jsonl")),
        seed=0,
        task=CLASSIFY,
    )
    train = data.report["files"]["train"]
    assert train["rows_read"] == 61
    assert train["removed"]["duplicate"] == 1
    assert train["modified"]["html_stripped"] == 1
    assert train["modified"]["whitespace_normalized"] == 1
    assert train["rows_kept"] == 60 == len(data.train)
    assert "The lamp was great & wonderful." in data.train["text"].tolist()
    assert data.report["splits"]["validation"]["origin"] == "file"
    assert data.labels == ["negative", "neutral", "positive"]


def test_conflicting_labels_keep_first_and_are_reported(tmp_path):
    rows = "".join(f"text {i} {lab},{lab}\n" for i in range(10) for lab in ("a", "b"))
    path = _csv(tmp_path, "review,sentiment\n" + rows + "text 0 a,b\n")
    data = prepare_data(_cfg(path), seed=0, task=CLASSIFY)
    assert data.report["files"]["train"]["removed"]["conflicting_label"] == 1


def test_split_is_stratified_and_seeded():
    a = prepare_data(_cfg(DATA / "reviews_train.csv"), seed=3, task=CLASSIFY)
    b = prepare_data(_cfg(DATA / "reviews_train.csv"), seed=3, task=CLASSIFY)
    c = prepare_data(_cfg(DATA / "reviews_train.csv"), seed=4, task=CLASSIFY)
    assert a.test["text"].tolist() == b.test["text"].tolist()
    assert a.test["text"].tolist() != c.test["text"].tolist()
    assert set(a.test["label"]) == set(a.labels) == set(a.validation["label"])
    sizes = [len(a.train), len(a.validation), len(a.test)]
    assert sum(sizes) == 60 and sizes[1] == sizes[2] == 6
    all_texts = a.train["text"].tolist() + a.validation["text"].tolist() + a.test["text"].tolist()
    assert len(set(all_texts)) == 60  # no row in two splits


def test_tiny_class_gets_a_clear_split_error(tmp_path):
    rows = "".join(f"text {i},common\n" for i in range(20)) + "lonely text,rare\n"
    with pytest.raises(DataError, match="label 'rare' has only 1 row"):
        prepare_data(_cfg(_csv(tmp_path, "review,sentiment\n" + rows)), seed=0, task=CLASSIFY)


def test_single_label_is_rejected(tmp_path):
    rows = "".join(f"text {i},only\n" for i in range(20))
    with pytest.raises(DataError, match="single label 'only'"):
        prepare_data(_cfg(_csv(tmp_path, "review,sentiment\n" + rows)), seed=0, task=CLASSIFY)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("<p>Hi&nbsp;<b>there</b></p>", "Hi there"),
        ("a   b\n\tc", "a b c"),
        ("<script>x()</script>ok", "ok"),
        ("5 < 6 and 7 > 3", "5 < 6 and 7 > 3"),
    ],
)
def test_normalize_text(raw, clean):
    assert normalize_text(raw) == clean


def test_bundled_bbc_news_is_real_and_complete():
    from tuneforge.data.bundled import load_bundled

    frame = load_bundled("bundled:bbc-news")
    assert len(frame) == 2225
    assert frame["label"].value_counts().to_dict() == {"sports": 511, "business": 510, "politics": 417, "tech": 401, "entertainment": 386}
    with pytest.raises(DataError, match="available: bundled:bbc-news"):
        load_bundled("bundled:nope")
