"""Long texts: windows are exact, overlapping substrings; chunked scores average them."""

import numpy as np
import pytest
from transformers import AutoTokenizer

from tuneforge.config import load_config
from tuneforge.engine.run import train
from tuneforge.errors import ConfigError
from tuneforge.predict.chunking import average_by_owner, split_windows, window_counts, window_tokens
from tuneforge.predict.predictor import Predictor

from conftest import write_config

LONG = " ".join(f"great phone {i % 10} awful lamp okay package arrived today" for i in range(12))


@pytest.fixture(scope="module")
def tokenizer(tiny_bert):
    return AutoTokenizer.from_pretrained(tiny_bert)


def test_windows_cover_the_text_with_overlap(tokenizer):
    texts = ["short text", LONG]
    pieces, owners = split_windows(tokenizer, texts, max_length=16)
    assert pieces[0] == "short text" and owners.tolist().count(0) == 1
    long_pieces = [p for p, o in zip(pieces, owners) if o == 1]
    assert len(long_pieces) == window_counts(tokenizer, texts, max_length=16)[1] > 1
    size = window_tokens(tokenizer, 16)
    for piece in long_pieces:
        assert piece in LONG  # exact substrings, cut at token boundaries
        assert len(tokenizer(piece, add_special_tokens=False)["input_ids"]) <= size
    assert LONG.startswith(long_pieces[0]) and LONG.endswith(long_pieces[-1])
    ids = tokenizer(LONG, add_special_tokens=False)["input_ids"]
    seen = sum(len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in long_pieces)
    assert seen > len(ids)  # windows overlap, so every token is seen and some twice


def test_window_counts_match_what_truncation_cuts(tokenizer):
    fits = "great phone " * 3
    counts = window_counts(tokenizer, [fits, LONG], max_length=16)
    assert counts[0] == 1 and counts[1] > 1
    full = tokenizer([fits, LONG], truncation=False)["input_ids"]
    assert [len(ids) > 16 for ids in full] == [c > 1 for c in counts]


def test_average_by_owner():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.5, 0.5]], dtype=np.float32)
    out = average_by_owner(probs, np.array([0, 1, 1, 2]), 3)
    np.testing.assert_allclose(out, [[0.9, 0.1], [0.3, 0.7], [0.5, 0.5]])


def test_predictor_chunks_long_texts_and_flags_truncation(tiny_bert, tmp_path, tokenizer):
    run = train(load_config(write_config(tmp_path, tiny_bert, method="full", max_length=16, epochs=1))).run_dir
    truncating = Predictor.load(run)
    chunking = Predictor.load(run, long_texts="chunk")
    texts = ["The phone was great.", LONG]
    assert truncating.truncated(texts) == [False, True] and chunking.truncated(texts) == [False, False]
    assert chunking.windows(texts)[1] > 1
    short_a, short_b = truncating.predict_proba(texts[:1]), chunking.predict_proba(texts[:1])
    np.testing.assert_allclose(short_a, short_b, atol=1e-6)  # texts that fit are scored the same way
    pieces, _ = split_windows(tokenizer, [LONG], max_length=16)
    expected = truncating.predict_proba(pieces).mean(axis=0)
    np.testing.assert_allclose(chunking.predict_proba([LONG])[0], expected, atol=1e-5)
    with pytest.raises(ConfigError, match="long_texts must be one of truncate, chunk"):
        Predictor.load(run, long_texts="summarize")
