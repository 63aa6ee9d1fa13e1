"""Why a multi-label model gave a text its labels: word attributions per label, each label on its own.

Every label has its own sigmoid, so each is explained apart: the labels above their
thresholds (or the single most likely one when none passes, marked `predicted: false`),
or the one label asked for. `tfidf`: exact linear contributions to that label's logit
(no average over labels to compete with: the words sum to the logit minus the bias);
transformer and `head` models: Integrated Gradients of that label's logit, as for classify.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from tuneforge.analysis.explain import WordAttribution, integrated_gradients, linear_contributions
from tuneforge.errors import ConfigError, DataError


@dataclass
class LabelExplanation:
    label: str
    score: float  # the model's probability of `label`
    threshold: float
    predicted: bool  # above its threshold
    words: list[WordAttribution] = field(default_factory=list)
    completeness: float | None = None


@dataclass
class LabelsExplanation:
    method: str  # integrated_gradients | linear
    text: str  # what the model read (after transforms)
    labels: list[LabelExplanation] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def parts(self) -> list[tuple[str, list[WordAttribution]]]:
        return [
            (f"{x.label} ({x.score:.3f}, threshold {x.threshold:.2f}{'' if x.predicted else ', not predicted'})", x.words)
            for x in self.labels
        ]


def explain_labels(predictor, text: str, *, label: str | None = None, steps: int) -> LabelsExplanation:
    """Attributions of `text`'s words to each predicted label, or to `label`."""
    labels = predictor.labels
    seen = predictor._clean([text])[0]
    probs = predictor.predict_proba([text])[0]
    thresholds = predictor.task.thresholds(predictor.meta)
    if label is not None and label not in labels:
        raise DataError(f"label: {label!r} is not one of the model's labels ({', '.join(labels)})")
    if label is not None:
        targets = [labels.index(label)]
    else:
        above = [int(j) for j in np.argsort(-probs, kind="stable") if probs[j] >= thresholds[j]]
        targets = above or [int(np.argmax(probs))]
    kind, backend = predictor.meta.kind, predictor.backend
    if kind == "lstm":
        raise ConfigError("explain covers transformer, head and tfidf models; this is an lstm model (method lstm)")
    if kind not in ("transformer", "head", "tfidf") or predictor.meta.extra.get("quantize"):
        raise ConfigError(f"a {backend.name} model has no gradients to follow; explain the original variant (--variant original)")
    out = LabelsExplanation("linear" if kind == "tfidf" else "integrated_gradients", seen)
    for j in targets:
        if kind == "tfidf":
            words, completeness = linear_contributions(backend, seen, j, against_mean=False), None
        else:
            words, delta = integrated_gradients(backend, kind, seen, j, steps=steps)
            completeness = round(delta, 4)
        score, threshold = float(probs[j]), float(thresholds[j])
        out.labels.append(LabelExplanation(labels[j], score, threshold, score >= threshold, words, completeness))
    return out
