"""Embedding indexes for retrieval: build, search, add and remove entries, save and reload without re-embedding."""

from tuneforge.retrieval.index import VectorIndex

__all__ = ["VectorIndex"]
