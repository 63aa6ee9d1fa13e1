"""Data lineage for deletion requests: which runs saw a row, and retraining a run without some rows.

Each run keeps keyed hashes (HMAC-SHA256, 64 bits) of every row it used, per split, and
SHA-256 digests of its source files — never the rows. The key lives in this user's
cache folder (created on first use, readable by the owner only), so the hashes in a
run folder cannot be checked against guessed texts by someone who has only the folder.
A row is what the model read: the text after the run's recorded transforms (for
recommendations: the user and item ids and the time; `tasks/recommend/lineage.py`),
so a query is shaped the same way first. Tasks whose rows name a person (the
task's `user_column`) also keep the hashed ids of the users each split holds and
of the users their side tables describe, so a customer can be found by id.

`matches` and `user_matches` answer "which models saw this customer's data?";
`engine/forget.py` retrains a run's recipe without some rows or users.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pandas as pd

from tuneforge.atomic import atomic_file, atomic_write_json
from tuneforge.data.rowhash import lineage_key  # noqa: F401 - re-exported: engine.forget uses it
from tuneforge.errors import DataError, RunError

LINEAGE_FILE = "lineage.json"
HASH_HEX = 16
USER_PREFIX = "\0user\0"  # user-id keys never equal a row key


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


def user_hashes(ids, key: bytes) -> list[str]:
    """Keyed hashes of user ids, sorted (the order would tell which rows they came from); their own domain of keys."""
    return sorted(set(row_hashes([USER_PREFIX + str(i).strip() for i in ids], key)))


def write_lineage(run, task, splits: dict[str, pd.DataFrame], sources: list[str], *, side_users: list[str] = ()) -> None:
    key = lineage_key()
    record = {
        "key_id": hashlib.sha256(key).hexdigest()[:8],
        "row_identity": task.row_identity(splits["train"]),
        "rows": {name: row_hashes(task.row_keys(frame), key) for name, frame in splits.items()},
        "sources": {s: file_digest(Path(s)) for s in sources if s and not s.startswith("bundled:")},
    }
    if task.user_column is not None:
        record["users"] = {name: user_hashes(frame[task.user_column], key) for name, frame in splits.items()}
        record["users"]["user_table"] = user_hashes(side_users, key)
    atomic_write_json(run.path / LINEAGE_FILE, record)


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


def read_query(run, source: str, *, text_column: str = "text") -> pd.DataFrame:
    """The rows of a data file (or one literal text) read the way `run`'s task reads them and keyed like its rows."""
    from tuneforge.tasks import get_task

    config = run.read_config()
    return get_task(config.task).query_rows(source, config, identity=read_lineage(run).get("row_identity"), text_column=text_column)


def query_keys(run, rows: pd.DataFrame, *, identity: list[str] | None = None) -> list[str]:
    """The rows' keys as this run made them: texts through the run's recorded transforms (or the task's own keys)."""
    from tuneforge.data.transforms import apply_transforms
    from tuneforge.tasks import get_task

    config = run.read_config()
    task = get_task(config.task)
    if identity is None:
        identity = read_lineage(run).get("row_identity") or []
    missing = [field for field in identity if field not in rows.columns]
    if missing:
        raise DataError(f"{run.path} identifies a row by {', '.join(identity)}; the rows to look for have no {', '.join(missing)}")
    frame = rows.copy()
    if "text" in frame:
        transforms = run.read_data_report().get("transforms") or []
        frame["text"] = [apply_transforms(t if isinstance(t, str) else "", transforms) for t in frame["text"]]
    return task.row_keys(frame)


def matches(run, rows: pd.DataFrame) -> dict[str, int]:
    """How many of `rows` each split of `run` holds."""
    lineage = checked_lineage(run)
    wanted = set(row_hashes(query_keys(run, rows, identity=lineage.get("row_identity") or []), lineage_key()))
    return {split: sum(h in wanted for h in hashes) for split, hashes in lineage["rows"].items()}


def user_matches(run, ids: list[str]) -> dict[str, int] | None:
    """How many of the users `ids` each split (and the side user table) of `run` holds; None: its rows name no users."""
    from tuneforge.tasks import get_task

    lineage = checked_lineage(run)
    if "users" not in lineage:
        if get_task(run.read_config().task).user_column is not None:
            raise RunError(f"{run.path}: its lineage was written before user ids were hashed; search it by interactions (--trained-on)")
        return None
    wanted = set(user_hashes(ids, lineage_key()))
    return {part: len(wanted.intersection(hashes)) for part, hashes in lineage["users"].items()}


def checked_lineage(run) -> dict:
    """The run's lineage, refused when it was hashed under another key (its answers would be wrong here)."""
    lineage = read_lineage(run)
    if hashlib.sha256(lineage_key()).hexdigest()[:8] != lineage.get("key_id"):
        raise RunError(f"{run.path}: its lineage was hashed with another key (another user or machine); it cannot be searched here")
    return lineage
