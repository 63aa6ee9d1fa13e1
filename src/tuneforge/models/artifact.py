"""The saved-model folder: weights in safetensors plus `tuneforge.json` describing how to use them."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tuneforge.errors import RunError

META_FILE = "tuneforge.json"
FORMAT_VERSION = 1
KINDS = ("transformer", "head", "tfidf", "onnx")


@dataclass
class ModelMeta:
    kind: str
    labels: list[str]
    method: str
    base_model: str | None = None
    max_length: int = 128
    strip_html: bool = True
    pooling: str = "mean"
    extra: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def write(self, folder: Path) -> None:
        # Plain write: callers build model folders inside runs.atomic_dir.
        (folder / META_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, folder: Path) -> ModelMeta:
        path = folder / META_FILE
        if not path.is_file():
            raise RunError(f"{folder} holds no tuneforge model ({META_FILE} missing); did training finish?")
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format_version", 0) > FORMAT_VERSION:
            raise RunError(f"{path}: saved by a newer tuneforge (format {data['format_version']}); upgrade tuneforge")
        if data.get("kind") not in KINDS:
            raise RunError(f"{path}: unknown model kind {data.get('kind')!r}")
        return cls(**data)
