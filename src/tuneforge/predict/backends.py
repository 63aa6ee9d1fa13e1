"""How each kind of saved model turns texts into class probabilities.

One class per `ModelMeta.kind`, same shape: `load(folder, meta)` then
`predict_proba(texts, batch_size=...)`. Loading reads safetensors and JSON only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import numpy as np

from tuneforge.models.artifact import ModelMeta
from tuneforge.models.encode import classifier_logits, forward_sorted, pool, softmax


class Backend(Protocol):
    name: str

    def predict_proba(self, texts: list[str], *, batch_size: int, progress: str | None = None) -> np.ndarray: ...


class TransformerBackend:
    """A sequence-classification model (full fine-tune, or LoRA merged into the weights)."""

    name = "torch"

    def __init__(self, folder: Path, meta: ModelMeta):
        from transformers import AutoTokenizer

        from tuneforge.models.surgery import load_classifier_dir

        self.meta = meta
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = load_classifier_dir(folder, meta).eval()
        if meta.extra.get("quantize") == "torch-int8":
            self.model = _torch_dynamic_int8(self.model)
            self.name = "torch-int8"

    def predict_proba(self, texts: list[str], *, batch_size: int, progress: str | None = None) -> np.ndarray:
        logits = classifier_logits(
            self.model, self.tokenizer, texts, max_length=self.meta.max_length, batch_size=batch_size, progress=progress
        )
        return softmax(logits)


class HeadBackend:
    """A frozen encoder plus a linear head stored in `head.safetensors`."""

    name = "torch"

    def __init__(self, folder: Path, meta: ModelMeta):
        from safetensors.numpy import load_file
        from transformers import AutoModel, AutoTokenizer

        self.meta = meta
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.encoder = AutoModel.from_pretrained(folder, use_safetensors=True).eval()
        head = load_file(str(folder / "head.safetensors"))
        self.weight, self.bias = head["weight"], head["bias"]

    def embed(self, texts: list[str], *, batch_size: int, progress: str | None = None) -> np.ndarray:
        return embed_texts(
            self.encoder,
            self.tokenizer,
            texts,
            max_length=self.meta.max_length,
            batch_size=batch_size,
            pooling=self.meta.pooling,
            progress=progress,
        )

    def predict_proba(self, texts: list[str], *, batch_size: int, progress: str | None = None) -> np.ndarray:
        features = self.embed(texts, batch_size=batch_size, progress=progress)
        return softmax(features @ self.weight.T + self.bias)


def embed_texts(encoder, tokenizer, texts, *, max_length: int, batch_size: int, pooling: str, progress: str | None = None) -> np.ndarray:
    def forward(batch):
        hidden = encoder(**batch).last_hidden_state
        return pool(hidden, batch["attention_mask"], pooling)

    return forward_sorted(forward, tokenizer, texts, max_length=max_length, batch_size=batch_size, progress=progress)


class TfidfBackend:
    """TF-IDF features and a linear model, rebuilt from JSON + safetensors (no pickle)."""

    name = "sklearn"

    def __init__(self, folder: Path, meta: ModelMeta):
        from safetensors.numpy import load_file

        self.meta = meta
        self.vectorizer = load_vectorizer(folder)
        head = load_file(str(folder / "head.safetensors"))
        self.weight, self.bias = head["weight"], head["bias"]

    def predict_proba(self, texts: list[str], *, batch_size: int, progress: str | None = None) -> np.ndarray:
        features = self.vectorizer.transform(texts)
        return softmax(np.asarray(features @ self.weight.T) + self.bias)


def load_vectorizer(folder: Path):
    from safetensors.numpy import load_file
    from sklearn.feature_extraction.text import TfidfVectorizer

    spec = json.loads((folder / "vectorizer.json").read_text(encoding="utf-8"))
    params = dict(spec["params"], ngram_range=tuple(spec["params"]["ngram_range"]))
    vectorizer = TfidfVectorizer(vocabulary=spec["vocabulary"], **params)
    vectorizer.idf_ = load_file(str(folder / "idf.safetensors"))["idf"]
    return vectorizer


class OnnxBackend:
    """A sequence-classification graph run by ONNX Runtime (fp32 export or int8-quantized)."""

    name = "onnxruntime"

    def __init__(self, folder: Path, meta: ModelMeta, threads: int | None = None):
        from transformers import AutoTokenizer

        ort = import_onnxruntime()
        self.meta = meta
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or cpu_threads()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # no busy-waiting between ops: idle pool threads would otherwise steal the cores the
        # HTTP event loop and tokenizer need (measured: p99 at 64 clients 3.6 s -> see docs/serving.md)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(folder / meta.extra["file"]), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def predict_proba(self, texts: list[str], *, batch_size: int, progress: str | None = None) -> np.ndarray:
        def forward(batch):
            return self.session.run(None, {k: batch[k] for k in self.inputs})[0]

        logits = forward_sorted(
            forward, self.tokenizer, texts, max_length=self.meta.max_length, batch_size=batch_size, progress=progress, tensors="np"
        )
        return softmax(logits)


def _torch_dynamic_int8(model):
    import warnings

    import torch

    with warnings.catch_warnings():  # torch.ao eager quantization is deprecated in favour of torchao, but still works
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        from tuneforge.errors import MissingDependencyError

        raise MissingDependencyError("ONNX models need onnxruntime: pip install 'tuneforge[compress]'") from None
    return onnxruntime


def cpu_threads() -> int:
    """Physical parallelism available to this process (respects CPU affinity / container limits)."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


BACKENDS = {"transformer": TransformerBackend, "head": HeadBackend, "tfidf": TfidfBackend, "onnx": OnnxBackend}


def load_backend(folder: Path, meta: ModelMeta, *, threads: int | None = None) -> Backend:
    """`threads` caps the compute threads (ONNX Runtime per session; PyTorch process-wide)."""
    if meta.kind == "onnx":
        return OnnxBackend(folder, meta, threads)
    if threads and meta.kind in ("transformer", "head"):
        import torch

        torch.set_num_threads(threads)
    return BACKENDS[meta.kind](folder, meta)
