"""LIME (Ribeiro et al., 2016) for any classify model: it needs only the probabilities.

It deletes random subsets of the text's words, scores the variants with the model, and
fits a weighted linear model of the label's probability on which words were kept; a
word's weight is its coefficient (probability units), shared evenly between its
occurrences. Works where gradients do not: tfidf, lstm, ONNX and int8 variants. Seeded,
so the same text, model and seed give the same answer. `local_fit` is the R² of that
local linear model on the samples (near 1: the weights describe the model well there).
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from tuneforge.errors import ConfigError

SPLIT = r"\W+"  # LIME's own word split: words are runs of letters, digits and underscores
SEPARATOR = re.compile(SPLIT)
BATCH_SIZE = 64


def _probabilities(predictor):
    """The model's probabilities for already-transformed texts: the samples come from the
    text as the model read it, so the run's transforms (redaction, HTML stripping) are not
    run again on every sample."""

    def score(texts: list[str]) -> np.ndarray:
        raw = predictor.task.infer(predictor.backend, list(texts), predictor.meta, batch_size=BATCH_SIZE)
        return np.asarray(raw, dtype=np.float64)

    return score


def lime_weights(predictor, text: str, target: int, *, num_samples: int, seed: int) -> tuple[list, float]:
    """(one WordAttribution per word of `text`, R² of the local model) for label index `target`."""
    try:
        from lime.lime_text import IndexedString, LimeTextExplainer
    except ImportError:
        raise ConfigError("method lime needs the lime package: pip install 'tuneforge[explain]'") from None
    from tuneforge.analysis.attribution import WordAttribution

    indexed = IndexedString(text, split_expression=SPLIT, bow=True)
    if indexed.num_words() == 0:
        return [], 1.0
    explainer = LimeTextExplainer(split_expression=SPLIT, bow=True, random_state=seed)
    result = explainer.explain_instance(
        text, _probabilities(predictor), labels=(target,), num_features=indexed.num_words(), num_samples=num_samples
    )
    weight = dict(result.as_map()[target])
    starts = indexed.string_start
    spans = []
    for i, piece in enumerate(indexed.as_list):
        if piece and not SEPARATOR.fullmatch(piece):
            spans.append((piece, int(starts[i]), int(starts[i]) + len(piece)))
    occurrences = Counter(piece for piece, _, _ in spans)
    vocabulary = {word: i for i, word in enumerate(indexed.inverse_vocab)}
    words = [
        WordAttribution(piece, start, end, round(float(weight.get(vocabulary[piece], 0.0)) / occurrences[piece], 6))
        for piece, start, end in spans
    ]
    return words, float(result.score)
