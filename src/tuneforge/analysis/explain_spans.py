"""Why an entity model found a span: for each predicted entity, which words of the text made it that type.

A span's score is the sum of its words' predicted-tag logits (`B-DATE` on the first
word, `I-DATE` on the rest, each read on the word's first word piece, where the model
tags it). Integrated Gradients attributes that score to every word of the text, so a
user sees the context ("on", "since", "worth") as well as the span itself. The
token model is wrapped as a classifier with one output per span, which lets the
classify explainer's IG (baseline, word-piece merging, completeness) run unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from types import SimpleNamespace

from tuneforge.analysis.explain import WordAttribution, integrated_gradients
from tuneforge.errors import ConfigError, DataError


@dataclass
class SpanExplanation:
    label: str
    start: int
    end: int
    text: str
    score: float  # the mean probability of the span's tags
    words: list[WordAttribution] = field(default_factory=list)
    completeness: float | None = None


@dataclass
class SpansExplanation:
    method: str
    text: str  # the text as sent (entity models run no transforms: offsets index it)
    entities: list[SpanExplanation] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def parts(self) -> list[tuple[str, list[WordAttribution]]]:
        return [(f"{e.label} {e.text!r} ({e.score:.3f})", e.words) for e in self.entities]


def _span_scores(model, picks: list[tuple[list[int], list[int]]]):
    """`model` (token classification) as a classifier whose output k is span k's summed tag logits."""
    import torch

    class SpanScores(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.picks = [(torch.tensor(p), torch.tensor(t)) for p, t in picks]

        def get_input_embeddings(self):
            return self.model.get_input_embeddings()

        def forward(self, input_ids, attention_mask):
            logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits
            return SimpleNamespace(logits=torch.stack([logits[:, p, t].sum(-1) for p, t in self.picks], dim=-1))

    return SpanScores()


def explain_spans(predictor, text: str, *, label: str | None = None, steps: int) -> SpansExplanation:
    """Attributions of `text`'s words to each predicted entity (of type `label` only, when given)."""
    from tuneforge.tasks.entities.spans import word_ranges

    if label is not None and label not in predictor.labels:
        raise DataError(f"label: {label!r} is not one of the model's entity types ({', '.join(predictor.labels)})")
    backend = predictor.backend
    if predictor.meta.kind != "transformer" or predictor.meta.extra.get("quantize"):
        raise ConfigError(f"a {backend.name} model has no gradients to follow; explain the original variant (--variant original)")
    seen = predictor._clean([text])[0]
    [prediction] = predictor.predict([text])
    entities = [e for e in prediction.entities if label is None or e.label == label]
    out = SpansExplanation("integrated_gradients", seen)
    if not entities:
        return out
    [logits], [offsets], [word_ids] = backend.token_logits([seen], batch_size=1)
    words = sorted(word_ranges(word_ids, offsets).values())
    picks = []
    for entity in entities:
        positions = [first for first, start, _ in words if entity.start <= start < entity.end]
        picks.append((positions, [int(logits[p].argmax()) for p in positions]))
    scorer = SimpleNamespace(model=_span_scores(backend.model, picks), tokenizer=backend.tokenizer, meta=backend.meta)
    for k, entity in enumerate(entities):
        attributions, delta = integrated_gradients(scorer, "transformer", seen, k, steps=steps)
        out.entities.append(
            SpanExplanation(entity.label, entity.start, entity.end, entity.text, entity.score, attributions, round(delta, 4))
        )
    return out
