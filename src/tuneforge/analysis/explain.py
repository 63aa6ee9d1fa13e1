"""Why a classifier chose a label: one attribution per word of the text, for the predicted (or a named) label.

- Transformer and frozen-encoder (`head`) models: Integrated Gradients (Sundararajan et
  al., 2017) through `captum`, on the input embeddings, from a baseline that keeps the
  special tokens and pads the rest; word pieces are summed into words. `completeness` is
  how far the attributions' sum is from f(text) - f(baseline) (IG's own check; near 0 is good).
- `tfidf` models: exact linear contributions. Each n-gram's share of the label's logit
  (relative to the mean logit over labels) is split evenly between its words; the sum over
  words is the whole logit difference, bias aside.

- Any classify model, on request (`method="lime"`): LIME through its probabilities
  (`tuneforge.analysis.explain_lime`); `local_fit` is its local model's R².

Attributions index the text as the model saw it (after the run's recorded transforms),
which is returned with them.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import asdict, dataclass, field

import numpy as np

from tuneforge.analysis.attribution import WordAttribution
from tuneforge.errors import ConfigError, DataError

DEFAULT_STEPS = 32
# `Task.explains` -> the explainer of tasks that are not one softmax over labels ("module:function", imported on use)
OTHER_SHAPES = {
    "labels": "tuneforge.analysis.explain_labels:explain_labels",
    "spans": "tuneforge.analysis.explain_spans:explain_spans",
}
DEFAULT_SAMPLES = 500  # LIME's perturbed texts per explanation (LIME's own default, 5000, is slow on a CPU transformer)
METHODS = ("auto", "ig", "lime", "linear")  # auto: linear for tfidf, integrated gradients for torch models


@dataclass
class Explanation:
    label: str
    score: float  # the model's probability of `label`
    method: str  # integrated_gradients | linear | lime
    text: str  # what the model read (after transforms)
    words: list[WordAttribution] = field(default_factory=list)
    completeness: float | None = None
    local_fit: float | None = None  # LIME: R² of the local linear model

    def to_dict(self) -> dict:
        return asdict(self)

    def top(self, k: int) -> list[WordAttribution]:
        return sorted(self.words, key=lambda w: -w.attribution)[:k]

    def parts(self) -> list[tuple[str, list[WordAttribution]]]:
        """(heading, words) per explained target, as the CLI shows them (one here; several for labels or spans)."""
        return [(f"{self.label} ({self.score:.3f})", self.words)]


def explain(
    predictor,
    text: str,
    *,
    label: str | None = None,
    method: str = "auto",
    steps: int = DEFAULT_STEPS,
    num_samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
) -> Explanation:
    """Attributions of `text`'s words to `label` (default: the predicted one), by `method` (see METHODS)."""
    if not predictor.task.explainable:
        raise ConfigError(f"explanations cover classify, multilabel and entities models; this is a {predictor.task.name} model")
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if not isinstance(text, str) or not text.strip():
        raise DataError("text: empty or only whitespace")
    other = OTHER_SHAPES.get(predictor.task.explains)
    if other is not None and method not in methods_for(predictor):
        raise ConfigError(
            f"method {method}: a {predictor.task.name} {predictor.meta.kind} model takes {' or '.join(methods_for(predictor))}"
        )
    if other is not None:  # one explanation per label above its threshold, or per found span
        module, _, function = other.partition(":")
        return getattr(importlib.import_module(module), function)(predictor, text, label=label, steps=steps)
    seen = predictor._clean([text])[0]
    probs = predictor.predict_proba([text])[0]
    labels = predictor.labels
    if label is None:
        target = int(np.argmax(probs))
    elif label in labels:
        target = labels.index(label)
    else:
        raise DataError(f"label: {label!r} is not one of the model's labels ({', '.join(labels)})")
    backend = predictor.backend
    kind = predictor.meta.kind
    method = _resolve(method, predictor)
    if method == "lime":
        from tuneforge.analysis.explain_lime import lime_weights

        words, fit = lime_weights(predictor, seen, target, num_samples=num_samples, seed=seed)
        return Explanation(labels[target], float(probs[target]), "lime", seen, words, local_fit=round(fit, 4))
    if method == "linear":
        words = linear_contributions(backend, seen, target)
        return Explanation(labels[target], float(probs[target]), "linear", seen, words)
    words, completeness = integrated_gradients(backend, kind, seen, target, steps=steps)
    return Explanation(labels[target], float(probs[target]), "integrated_gradients", seen, words, round(completeness, 4))


def methods_for(predictor) -> tuple[str, ...]:
    """The `method` values this model takes (`auto` always: the cheapest faithful one it allows).

    The service documents the methods every served model takes, so a documented value is never refused."""
    kind, gradients = predictor.meta.kind, predictor.meta.kind in ("transformer", "head") and not predictor.meta.extra.get("quantize")
    if predictor.task.explains != "label":  # per label or per span: the model's own exact or gradient explainer
        return ("auto", "linear") if kind == "tfidf" else ("auto", "ig")
    if kind == "tfidf":
        return ("auto", "linear", "lime")
    return ("auto", "ig", "lime") if gradients else ("auto", "lime")


def _resolve(method: str, predictor) -> str:
    """The method to run for this model: `auto` picks linear (tfidf), ig (transformer, head) or lime (lstm, compressed
    variants); a method the model cannot take is refused."""
    kind, name = predictor.meta.kind, predictor.backend.name
    if method == "lime":
        return method
    if method == "auto" and "ig" not in methods_for(predictor) and kind != "tfidf":
        return "lime"
    if kind == "tfidf" and method in ("auto", "linear"):
        return "linear"
    if method == "linear":
        raise ConfigError(f"method linear: exact contributions exist for tfidf models; this is a {kind} model (use ig or lime)")
    if kind == "tfidf":
        raise ConfigError("method ig: a tfidf model has no gradients to follow; use linear (exact) or lime")
    if kind == "lstm":
        raise ConfigError("integrated gradients cover transformer and head models; this is an lstm model (use method lime)")
    if kind not in ("transformer", "head") or predictor.meta.extra.get("quantize"):
        raise ConfigError(
            f"a {name} model has no gradients to follow; explain the original variant (--variant original) or use method lime"
        )
    return "ig"


# -- tfidf -------------------------------------------------------------------------------------


def linear_contributions(backend, text: str, target: int, *, against_mean: bool = True) -> list[WordAttribution]:
    """`against_mean`: softmax labels compete, so a word's evidence is counted against the average label;
    False for independent (sigmoid) labels, where the words sum to the label's own logit minus its bias."""
    vectorizer = backend.vectorizer
    x = vectorizer.transform([text]).tocsr()
    relative = backend.weight[target] - (backend.weight.mean(axis=0) if against_mean else 0.0)
    # hashed features (a streamed run) have no vocabulary: name only the columns this text hits
    names = vectorizer.feature_names_for(text) if hasattr(vectorizer, "feature_names_for") else vectorizer.get_feature_names_out()
    per_word: dict[str, float] = {}
    for f, value in zip(x.indices, x.data):
        grams = names[f].split(" ")
        for word in grams:
            per_word[word] = per_word.get(word, 0.0) + float(value * relative[f]) / len(grams)
    pattern = re.compile(vectorizer.token_pattern)
    spans = [(m.group(0), m.start(), m.end()) for m in pattern.finditer(text)]
    occurrences: dict[str, int] = {}
    for word, _, _ in spans:
        occurrences[word.lower()] = occurrences.get(word.lower(), 0) + 1
    return [
        WordAttribution(word, start, end, round(per_word.get(word.lower(), 0.0) / occurrences[word.lower()], 6))
        for word, start, end in spans
    ]


# -- transformers ------------------------------------------------------------------------------


def _forward(backend, kind: str):
    """(embedding layer, differentiable logits(input_ids, attention_mask)) of a torch backend."""
    import torch

    if kind == "transformer":
        model = backend.model.eval()
        return model.get_input_embeddings(), lambda ids, mask: model(input_ids=ids, attention_mask=mask).logits
    encoder = backend.encoder.eval()
    weight, bias = (
        torch.from_numpy(np.asarray(backend.weight, dtype=np.float32)),
        torch.from_numpy(np.asarray(backend.bias, dtype=np.float32)),
    )

    def logits(ids, mask):
        hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        if backend.meta.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            m = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return pooled @ weight.T + bias

    return encoder.get_input_embeddings(), logits


def integrated_gradients(backend, kind: str, text: str, target: int, *, steps: int) -> tuple[list[WordAttribution], float]:
    try:
        from captum.attr import LayerIntegratedGradients
    except ImportError:
        raise ConfigError("explanations of transformer models need captum: pip install 'tuneforge[explain]'") from None
    import torch

    tokenizer = backend.tokenizer
    encoded = tokenizer(text, truncation=True, max_length=backend.meta.max_length, return_offsets_mapping=True, return_tensors="pt")
    ids, mask = encoded["input_ids"], encoded["attention_mask"]
    special = torch.tensor(tokenizer.get_special_tokens_mask(ids[0].tolist(), already_has_special_tokens=True), dtype=torch.bool)
    baseline = torch.where(special, ids[0], torch.tensor(tokenizer.pad_token_id)).unsqueeze(0)
    embeddings, logits = _forward(backend, kind)
    ig = LayerIntegratedGradients(lambda i, m: logits(i, m), embeddings)
    attributions, delta = ig.attribute(
        inputs=ids, baselines=baseline, additional_forward_args=(mask,), target=target, n_steps=steps, return_convergence_delta=True
    )
    per_piece = attributions.sum(dim=-1)[0].detach().numpy()
    offsets = encoded["offset_mapping"][0].tolist()
    words: dict[int, list] = {}
    for position, word_id in enumerate(encoded.word_ids(0)):
        if word_id is None or special[position]:
            continue
        start, end = offsets[position]
        entry = words.setdefault(word_id, [start, end, 0.0])
        entry[1] = end
        entry[2] += float(per_piece[position])
    out = [WordAttribution(text[s:e], s, e, round(a, 6)) for s, e, a in (words[w] for w in sorted(words))]
    return out, float(delta.abs().sum())
