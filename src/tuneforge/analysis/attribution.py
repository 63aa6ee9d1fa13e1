"""One word's share of a prediction: the unit every explainer (linear, integrated gradients, LIME) answers in."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class WordAttribution:
    text: str
    start: int  # character offsets into the text the model read (after transforms)
    end: int
    attribution: float
