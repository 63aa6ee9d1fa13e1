"""How much PII `data.redact` catches: seeded fake identifiers inserted into real texts, recall and precision per type.

    python benchmarks/redact_quality.py [--texts 1600] [--seed 0]

Real texts: `bundled:chatterbot-questions` and sentences of `bundled:bbc-news`. Into each,
one identifier made by `faker` (seeded; en_GB and en_US locales) is inserted with a short
template ("... Contact me at {value}."). Recall of a type: inserted values fully covered by a
detected span of that type ("removed" counts a span of any type: what privacy needs).
Precision of a type: its detected spans that overlap an inserted value of that type. Real BBC
sentences name real people and places that were not inserted, so PERSON and LOCATION
precision is a lower bound. Writes benchmarks/results/redact_quality.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = {
    "EMAIL": ("{text} Contact me at {value}.", lambda f: f.email()),
    "PHONE": ("{text} Call me on {value} please.", lambda f: f.phone_number()),
    "CREDIT_CARD": ("{text} My card number is {value}.", lambda f: f.credit_card_number()),
    "IBAN": ("{text} Pay to {value} today.", lambda f: f.iban()),
    "IP": ("{text} It failed from {value} again.", lambda f: f.ipv4_public()),
    "URL": ("{text} Details at {value} now.", lambda f: f.url()),
    "PERSON": ("{text} Regards, {value}", lambda f: f.name()),
    "LOCATION": ("{text} I live in {value}.", lambda f: f.city()),
}


def real_texts(n: int, seed: int) -> list[str]:
    from tuneforge.data.bundled import load_bundled
    from tuneforge.data.rule_entities import sentences

    rng = np.random.default_rng(seed)
    questions = load_bundled("bundled:chatterbot-questions")["text"].tolist()
    bbc = [s for article in load_bundled("bundled:bbc-news")["text"].sample(300, random_state=seed) for s in sentences(article)]
    pool = [t.strip() for t in questions + bbc if 20 <= len(t.strip()) <= 300]
    return [pool[i] for i in rng.choice(len(pool), size=n, replace=False)]


def make_cases(n: int, seed: int) -> list[dict]:
    from faker import Faker

    fake = Faker(["en_GB", "en_US"])
    Faker.seed(seed)
    cases = []
    for i, text in enumerate(real_texts(n, seed)):
        kind = list(TEMPLATES)[i % len(TEMPLATES)]
        template, make = TEMPLATES[kind]
        value = make(fake)
        full = template.format(text=text, value=value)
        start = full.index(value, len(text))
        cases.append({"text": full, "kind": kind, "start": start, "end": start + len(value), "value": value})
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/redact_quality.json")
    args = parser.parse_args()
    from tuneforge.data.redact import OURS, redactor, transform_name

    cases = make_cases(args.texts, args.seed)
    r = redactor(transform_name(list(TEMPLATES), "replace"))
    r.find("warm up the pipeline")
    started = time.perf_counter()
    found = [r.find(c["text"]) for c in cases]
    seconds = time.perf_counter() - started
    inserted, typed_hit, removed = defaultdict(int), defaultdict(int), defaultdict(int)
    detected, detected_right, misses = defaultdict(int), defaultdict(int), defaultdict(list)
    for case, spans in zip(cases, found):
        kind = case["kind"]
        inserted[kind] += 1
        covering = [s for s in spans if s.start <= case["start"] and s.end >= case["end"]]
        overlapping = [s for s in spans if s.start < case["end"] and s.end > case["start"]]
        typed_hit[kind] += any(OURS.get(s.entity_type) == kind for s in covering)
        removed[kind] += bool(covering) or sum(min(s.end, case["end"]) - max(s.start, case["start"]) for s in overlapping) >= 0.8 * (
            case["end"] - case["start"]
        )
        if not covering and len(misses[kind]) < 3:
            misses[kind].append(case["value"])
        for s in spans:
            ours = OURS.get(s.entity_type, s.entity_type)
            detected[ours] += 1
            detected_right[ours] += ours == kind and s.start < case["end"] and s.end > case["start"]
    rows = []
    for kind in TEMPLATES:
        rows.append(
            {
                "entity": kind,
                "inserted": inserted[kind],
                "recall": round(typed_hit[kind] / inserted[kind], 4),
                "removed": round(removed[kind] / inserted[kind], 4),
                "precision": round(detected_right[kind] / detected[kind], 4) if detected[kind] else None,
                "detected": detected[kind],
                "missed_examples": misses[kind],
            }
        )
    print(f"{'entity':<12} {'n':>4} {'recall':>7} {'removed':>8} {'precision':>9}   missed, e.g.")
    for row in rows:
        precision = f"{row['precision']:.3f}" if row["precision"] is not None else "-"
        print(
            f"{row['entity']:<12} {row['inserted']:>4} {row['recall']:>7.3f} {row['removed']:>8.3f} {precision:>9}   {'; '.join(row['missed_examples'])}"
        )
    rate = len(cases) / seconds
    print(f"{len(cases)} texts in {seconds:.1f} s: {rate:.0f} texts/s (one process, {os.cpu_count()} cores)")
    machine = {"python": platform.python_version(), "cpu_count": os.cpu_count(), "machine": platform.machine()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"texts": len(cases), "seed": args.seed, "texts_per_second": round(rate, 1), "machine": machine, "rows": rows}, indent=2)
        + "\n"
    )


if __name__ == "__main__":
    main()
