"""Tiny synthetic data for the multilabel and entities tasks, in the words the tiny test tokenizer knows."""

from __future__ import annotations

import json
import random
from pathlib import Path

PRODUCTS = ["phone", "lamp", "book", "chair"]
FEELINGS = ["great", "awful", "fine", "broken"]


def multilabel_rows(n: int, seed: int = 0) -> list[dict]:
    """ "The phone and the lamp arrived" -> ["lamp", "phone"]; some texts name no product (no label)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        chosen = sorted(rng.sample(PRODUCTS, rng.choice([0, 1, 1, 2, 2, 3])))
        if chosen:
            text = " and ".join(f"the {p}" for p in chosen).capitalize() + " arrived " + rng.choice(FEELINGS)
        else:
            text = f"The package arrived {rng.choice(FEELINGS)}"
        rows.append({"id": i, "text": text, "tags": "|".join(chosen), "shop": rng.choice(["north", "south"])})
    return rows


def entity_rows(n: int, seed: int = 0) -> list[dict]:
    """ "The lamp was great and the book was awful" with PRODUCT and FEELING spans (character offsets)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        parts, spans, text = [], [], ""
        for k in range(rng.choice([1, 2])):
            product, feeling = rng.choice(PRODUCTS), rng.choice(FEELINGS)
            prefix = "The " if k == 0 else " and the "
            start = len(text) + len(prefix)
            text += f"{prefix}{product} was {feeling}"
            spans.append({"start": start, "end": start + len(product), "label": "PRODUCT"})
            f_start = start + len(product) + len(" was ")
            spans.append({"start": f_start, "end": f_start + len(feeling), "label": "FEELING"})
            parts.append(product)
        rows.append({"text": text, "entities": spans})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
