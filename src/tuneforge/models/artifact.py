"""The saved-model folder: weights in safetensors plus `tuneforge.json` describing how to use them.

`tuneforge.json` records the task, the label list, the method, the input window
and the ordered text transforms that prediction must replay. Folders written
before tasks and transform lists existed load as `classify` with the transforms
their `strip_html` flag implies.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tuneforge.data.transforms import default_transforms
from tuneforge.errors import RunError
from tuneforge.rundir import META_FILE

FORMAT_VERSION = 2
KINDS = ("transformer", "head", "tfidf", "lstm", "onnx", "recommender", "chatbot", "masked-lm", "causal-lm")


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
    task: str = "classify"
    transforms: list[str] | None = None  # None: what `strip_html` implies (format 1)

    def __post_init__(self) -> None:
        if self.transforms is None:
            self.transforms = default_transforms(strip_html=self.strip_html)

    def write(self, folder: Path) -> None:
        # Plain write: callers build model folders inside atomic.atomic_dir.
        (folder / META_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, folder: Path) -> ModelMeta:
        path = folder / META_FILE
        if not path.is_file():
            raise RunError(f"{folder} holds no tuneforge model ({META_FILE} missing); did training finish?")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunError(f"{path}: unreadable ({exc})") from None
        if not isinstance(data, dict):
            raise RunError(f"{path}: expected a JSON object")
        if data.get("format_version", 0) > FORMAT_VERSION:
            raise RunError(f"{path}: saved by a newer tuneforge (format {data['format_version']}); upgrade tuneforge")
        if data.get("kind") not in KINDS:
            raise RunError(f"{path}: unknown model kind {data.get('kind')!r}")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)
