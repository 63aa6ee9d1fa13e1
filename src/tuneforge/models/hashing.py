"""TF-IDF over hashed n-grams: the streamed `tfidf` method's features, with no vocabulary to hold.

`HashingVectorizer` maps each word n-gram to one of `n_features` columns by a
fixed hash, so features need no fitted vocabulary and memory does not grow with
the data; document frequencies are counted per column in one pass, giving the
same sublinear TF-IDF weighting (l2-normalised) as the in-memory method. Saved
as JSON (`vectorizer.json`, kind "hashing") plus `idf.safetensors`: no pickle.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


class HashedTfidf:
    """Hashed word n-grams -> sublinear TF-IDF -> l2 rows (a scipy CSR matrix)."""

    def __init__(self, *, n_features: int, ngram_max: int, idf: np.ndarray | None = None):
        from sklearn.feature_extraction.text import HashingVectorizer

        self.params = {
            "n_features": int(n_features),
            "ngram_range": [1, int(ngram_max)],
            "lowercase": True,
            "strip_accents": "unicode",
        }
        self._hashing = HashingVectorizer(
            n_features=n_features, ngram_range=(1, ngram_max), lowercase=True, strip_accents="unicode", alternate_sign=False, norm=None
        )
        self.idf_ = idf

    def fit_idf(self, text_chunks: Iterable[Sequence[str]]) -> HashedTfidf:
        """Smoothed idf, ln((1 + n) / (1 + df)) + 1 as scikit-learn's TfidfTransformer, counted a chunk at a time."""
        df = np.zeros(self.params["n_features"], dtype=np.int64)
        n = 0
        for texts in text_chunks:
            counts = self._hashing.transform(list(texts))
            df += np.bincount(counts.indices, minlength=len(df))  # each (row, column) appears once in CSR
            n += counts.shape[0]
        self.idf_ = np.log((1.0 + n) / (1.0 + df)) + 1.0
        return self

    def transform(self, texts: Sequence[str]):
        from sklearn.preprocessing import normalize

        counts = self._hashing.transform(list(texts)).astype(np.float64)
        np.log(counts.data, out=counts.data)
        counts.data += 1.0  # sublinear tf: 1 + ln(tf)
        counts.data *= self.idf_[counts.indices]
        return normalize(counts, norm="l2", copy=False)

    @property
    def token_pattern(self) -> str:
        return self._hashing.token_pattern

    def feature_names_for(self, text: str) -> dict[int, str]:
        """Column -> the n-gram of `text` hashed to it (for explanations; a rare collision keeps one n-gram)."""
        from sklearn.feature_extraction import FeatureHasher

        grams = sorted(set(self._hashing.build_analyzer()(text)))
        if not grams:
            return {}
        hasher = FeatureHasher(n_features=self.params["n_features"], input_type="string", alternate_sign=False)
        columns = hasher.transform([[g] for g in grams]).tocsr()
        return {int(columns.indices[columns.indptr[i]]): g for i, g in enumerate(grams)}

    def spec(self) -> dict:
        return {"kind": "hashing", "params": dict(self.params), "sublinear_tf": True, "norm": "l2"}

    @classmethod
    def from_spec(cls, spec: dict, idf: np.ndarray) -> HashedTfidf:
        params = spec["params"]
        return cls(n_features=params["n_features"], ngram_max=params["ngram_range"][1], idf=idf)
