"""Answer and retrieval scores of the chat task.

- token F1: SQuAD-style overlap of lower-cased word tokens (punctuation and articles dropped);
- ROUGE-L: F-measure of the longest common subsequence of word tokens (Lin, 2004);
- groundedness: the share of an answer's sentences supported by a cited source. A
  sentence is *supported* when at least half of its content words (words of 3+ letters
  or digits that are not English stop words) appear in one cited passage (or FAQ entry).
  Sentences without content words are not counted; an answer citing nothing has
  groundedness 0 when it has any content sentence;
- retrieval hit@k and reciprocal rank of the first entry from an expected source.
"""

from __future__ import annotations

import re
from collections import Counter

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

TOKEN = re.compile(r"[a-z0-9]+")
ARTICLES = {"a", "an", "the"}
STOP_WORDS = ENGLISH_STOP_WORDS  # scikit-learn's list of 318 English stop words
SUPPORT_SHARE = 0.5
SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
CITATION = re.compile(r"\[\d+\]")


def words(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


def _answer_tokens(text: str) -> list[str]:
    return [w for w in words(text) if w not in ARTICLES]


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = _answer_tokens(prediction), _answer_tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def _lcs(a: list[str], b: list[str]) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, reference: str) -> float:
    pred, ref = words(prediction), words(reference)
    if not pred or not ref:
        return float(pred == ref)
    lcs = _lcs(pred, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def content_words(text: str) -> set[str]:
    return {w for w in words(text) if (len(w) >= 3 or w.isdigit()) and w not in STOP_WORDS}


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE.split(CITATION.sub(" ", text)) if s and s.strip()]


def sentence_support(answer: str, cited: list[str]) -> tuple[int, int]:
    """(supported sentences, sentences with content words) of `answer` against the cited texts."""
    pools = [content_words(c) for c in cited]
    supported = counted = 0
    for sentence in sentences(answer):
        needed = content_words(sentence)
        if not needed:
            continue
        counted += 1
        if any(len(needed & pool) >= SUPPORT_SHARE * len(needed) for pool in pools):
            supported += 1
    return supported, counted


def groundedness(answer: str, cited: list[str]) -> float | None:
    """Share of the answer's content sentences supported by one cited text; None when it has none."""
    supported, counted = sentence_support(answer, cited)
    return supported / counted if counted else None


def first_hit_rank(ranked_sources: list[str], expected: set[str]) -> int | None:
    """1-based rank of the first source in `expected`, or None."""
    for rank, source in enumerate(ranked_sources, start=1):
        if source in expected:
            return rank
    return None


def ranking_scores(ranks: list[int | None]) -> dict[str, float]:
    """hit@1, hit@5 and MRR over queries with an expected source (rank None: not retrieved)."""
    n = len(ranks)
    if n == 0:
        return {}
    return {
        "hit@1": sum(r == 1 for r in ranks) / n,
        "hit@5": sum(r is not None and r <= 5 for r in ranks) / n,
        "mrr": sum(1 / r for r in ranks if r) / n,
    }


def handoff_scores(out_of_scope: list[bool], handed_over: list[bool]) -> dict[str, float]:
    """Precision and recall of handing over, out-of-scope questions being the positives."""
    tp = sum(o and h for o, h in zip(out_of_scope, handed_over))
    predicted, actual = sum(handed_over), sum(out_of_scope)
    precision = tp / predicted if predicted else 0.0
    recall = tp / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"handoff_precision": precision, "handoff_recall": recall, "handoff_f1": f1}


def paired_difference(variant: list[float], original: list[float], *, rounds: int = 2000, seed: int = 0) -> dict:
    """Mean of variant - original over the same queries with a 95 % percentile-bootstrap interval: on a few dozen
    queries answer F1 moves by several points on noise alone, so a difference is read against its interval."""
    import numpy as np

    diff = np.asarray(variant, dtype=float) - np.asarray(original, dtype=float)
    if diff.size == 0:
        return {"mean": None, "ci95": None, "better": 0, "worse": 0}
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, diff.size, (rounds, diff.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {
        "mean": round(float(diff.mean()), 4),
        "ci95": [round(float(low), 4), round(float(high), 4)],
        "better": int((diff > 0).sum()),
        "worse": int((diff < 0).sum()),
    }
