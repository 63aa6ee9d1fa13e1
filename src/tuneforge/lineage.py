"""Data lineage for deletion requests: which runs saw a row, and retraining a run without some rows.

Each run keeps keyed hashes (HMAC-SHA256, 64 bits) of every row it used, per split, and
SHA-256 digests of its source files — never the rows. The key lives in this user's
cache folder (created on first use, readable by the owner only), so the hashes in a
run folder cannot be checked against guessed texts by someone who has only the folder.
A row is what the model read: the text after the run's recorded transforms (for
recommendations: the user and item ids), so a query is shaped the same way first.

`matches` answers "which models saw this customer's data?"; `engine/forget.py`
retrains a run's recipe without some rows.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pandas as pd

from tuneforge.atomic import atomic_file, atomic_write_json
from tuneforge.data.rowhash import lineage_key  # noqa: F401 - re-exported: engine.forget uses it
from tuneforge.errors import RunError

LINEAGE_FILE = "lineage.json"
HASH_HEX = 16


def row_hashes(keys: list[str], key: bytes) -> list[str]:
    return [hmac.new(key, k.encode("utf-8"), hashlib.sha256).hexdigest()[:HASH_HEX] for k in keys]


def file_digest(path: Path) -> str | None:
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_lineage(run, task, splits: dict[str, pd.DataFrame], sources: list[str]) -> None:
    key = lineage_key()
    atomic_write_json(
        run.path / LINEAGE_FILE,
        {
            "key_id": hashlib.sha256(key).hexdigest()[:8],
            "rows": {name: row_hashes(task.row_keys(frame), key) for name, frame in splits.items()},
            "sources": {s: file_digest(Path(s)) for s in sources if s and not s.startswith("bundled:")},
        },
    )


def write_lineage_hashes(run, hashes: dict, sources: list[str]) -> None:
    """`write_lineage` for a streamed run: the per-split uint64 hashes (`data/rowhash.py`), written a block at a time."""
    import numpy as np

    key = lineage_key()
    head = {"key_id": hashlib.sha256(key).hexdigest()[:8]}
    with atomic_file(run.path / LINEAGE_FILE, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(head)[:-1] + ', "rows": {')
        for n, (split, values) in enumerate(hashes.items()):
            fh.write(("," if n else "") + json.dumps(split) + ": [")
            values = np.asarray(values, dtype=np.uint64)
            for start in range(0, len(values), 65536):
                block = ",".join(f'"{v:0{HASH_HEX}x}"' for v in values[start : start + 65536].tolist())
                fh.write(("," if start else "") + block)
            fh.write("]")
        fh.write('}, "sources": ' + json.dumps({s: file_digest(Path(s)) for s in sources if s and not s.startswith("bundled:")}) + "}")


def read_lineage(run) -> dict:
    path = run.path / LINEAGE_FILE
    if not path.is_file():
        raise RunError(f"{run.path}: no {LINEAGE_FILE} (runs made before lineage was recorded cannot be searched)")
    return json.loads(path.read_text(encoding="utf-8"))


def query_keys(run, rows: pd.DataFrame) -> list[str]:
    """The rows' keys as this run made them: texts through the run's recorded transforms (or the task's own keys)."""
    from tuneforge.data.transforms import apply_transforms
    from tuneforge.tasks import get_task

    config = run.read_config()
    task = get_task(config.task)
    frame = rows.copy()
    if "text" in frame:
        transforms = run.read_data_report().get("transforms") or []
        frame["text"] = [apply_transforms(t if isinstance(t, str) else "", transforms) for t in frame["text"]]
    return task.row_keys(frame)


def matches(run, rows: pd.DataFrame) -> dict[str, int]:
    """How many of `rows` each split of `run` holds."""
    lineage = read_lineage(run)
    key = lineage_key()
    if hashlib.sha256(key).hexdigest()[:8] != lineage.get("key_id"):
        raise RunError(f"{run.path}: its lineage was hashed with another key (another user or machine); it cannot be searched here")
    wanted = set(row_hashes(query_keys(run, rows), key))
    return {split: sum(h in wanted for h in hashes) for split, hashes in lineage["rows"].items()}
