"""The data-lineage hooks every task has (`tuneforge runs --trained-on/--user`, `tuneforge forget`).

A mixin rather than part of `Task` so tasks that are not about text (recommend,
chat), which do not subclass `Task`, get the same protocol. The defaults are the
text tasks': a row is the text the model read, and a retrain reads the kept
splits back from files.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pandas as pd


class LineageHooks:
    user_column: ClassVar[str | None] = None  # the split column naming the person a row is about; None: rows name nobody

    def row_keys(self, frame: pd.DataFrame) -> list[str]:
        """What identifies a row for data lineage (hashed, never stored): the text the model read."""
        return [t if isinstance(t, str) else "" for t in frame["text"]]

    def row_identity(self, frame: pd.DataFrame) -> list[str]:
        """The fields `row_keys` is made of, recorded in lineage.json so a query is keyed the same way."""
        return ["text"]

    def lineage_sources(self, config) -> list[str]:
        """The files whose digests lineage.json keeps (side tables too, for tasks that read them)."""
        return [config.data.train, config.data.validation, config.data.test]

    def side_users(self, config) -> list[str]:
        """Ids of users the model knows from side data rather than from split rows (a user table); none by default."""
        return []

    def query_rows(self, source: str, config, *, identity: list[str] | None, text_column: str) -> pd.DataFrame:
        """The rows a lineage query looks for: a data file read like training data, or one literal text."""
        from tuneforge.data.read import read_table

        if Path(source).is_file():
            frame, _ = read_table(source, text_column=text_column, label_column=None)
            return frame
        return pd.DataFrame({"text": [source]})

    def saved_split_columns(self) -> dict:
        """`data` settings that read a saved split back (a retrain without some rows)."""
        return {"text_column": "text", "label_column": "label", "max_rows": None}

    def retrain_without(self, config, kept: dict[str, pd.DataFrame], *, users: set[str], staging: Path, report: dict):
        """The raw config (and, for tasks that take their splits as they are, the `PreparedData`) of a retrain on `kept`.

        Text tasks read the kept splits back from files in `staging` (removed after training), so
        they pass through the same reading and cleaning as the first time; `users` does not apply."""
        paths = {}
        for name, frame in kept.items():
            paths[name] = staging / f"{name}.jsonl"
            frame.drop(columns=["source"], errors="ignore").to_json(paths[name], orient="records", lines=True, force_ascii=False)
        raw = config.to_dict()
        raw["data"].update(self.saved_split_columns())
        raw["data"].update(
            train=str(paths["train"]),
            validation=str(paths["validation"]),
            test=str(paths["test"]) if "test" in paths else None,
            format="jsonl",
        )
        return raw, None
