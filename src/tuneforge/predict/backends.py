"""How each kind of saved model turns texts into logits.

One class per `ModelMeta.kind`, same surface: `tokenizer` (None when the model
reads raw text, like tfidf; a word tokenizer for lstm), `name` (the runtime) and `logits(texts, ...)`. The
task turns logits into its predictions (softmax, sigmoid + thresholds, spans).
Token-level tasks also use `token_logits`. Loading reads safetensors and JSON only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from tuneforge.models.artifact import ModelMeta
from tuneforge.models.encode import classifier_logits, embed_texts, forward_sorted


class Backend(Protocol):
    name: str
    tokenizer: object | None  # the model's tokenizer; None when it reads raw text

    def logits(self, texts: Sequence[str], *, batch_size: int, progress: str | None = None) -> np.ndarray: ...


class TransformerBackend:
    """A fine-tuned transformer with its task head (full fine-tune, or LoRA merged into the weights)."""

    name = "torch"

    def __init__(self, folder: Path, meta: ModelMeta, *, auto_model: str, **_):
        from transformers import AutoTokenizer

        from tuneforge.models.loading import load_saved_model

        self.meta = meta
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = load_saved_model(folder, meta, auto_model)
        if meta.extra.get("quantize") == "torch-int8":
            self.model = _torch_dynamic_int8(self.model)
            self.name = "torch-int8"

    def logits(self, texts: Sequence[str], *, batch_size: int, progress: str | None = None) -> np.ndarray:
        return classifier_logits(
            self.model, self.tokenizer, texts, max_length=self.meta.max_length, batch_size=batch_size, progress=progress
        )

    def token_logits(self, texts: Sequence[str], *, batch_size: int) -> tuple[list[np.ndarray], list[list[tuple[int, int]]], list[list]]:
        """Per text: logits of every word piece [T, C], their character offsets, and the word each belongs to (None for special tokens)."""
        import torch

        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.meta.max_length, return_offsets_mapping=True)
        offsets = [list(map(tuple, o)) for o in encoded["offset_mapping"]]
        word_ids = [encoded.word_ids(i) for i in range(len(texts))]
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
        out: list[np.ndarray] = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                rows = range(start, min(start + batch_size, len(texts)))
                batch = self.tokenizer.pad([{k: encoded[k][i] for k in keys} for i in rows], return_tensors="pt")
                logits = self.model(**batch).logits.float().numpy()
                out.extend(logits[j, : len(encoded["input_ids"][i])] for j, i in enumerate(rows))
        return out, offsets, word_ids


class HeadBackend:
    """A frozen encoder plus a linear head stored in `head.safetensors`."""

    name = "torch"

    def __init__(self, folder: Path, meta: ModelMeta, **_):
        from safetensors.numpy import load_file
        from transformers import AutoModel, AutoTokenizer

        self.meta = meta
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.encoder = AutoModel.from_pretrained(folder, use_safetensors=True).eval()
        head = load_file(str(folder / "head.safetensors"))
        self.weight, self.bias = head["weight"], head["bias"]

    def logits(self, texts: Sequence[str], *, batch_size: int, progress: str | None = None) -> np.ndarray:
        features = embed_texts(
            self.encoder,
            self.tokenizer,
            texts,
            max_length=self.meta.max_length,
            batch_size=batch_size,
            pooling=self.meta.pooling,
            progress=progress,
        )
        return features @ self.weight.T + self.bias


class TfidfBackend:
    """TF-IDF features and a linear model, rebuilt from JSON + safetensors (no pickle)."""

    name = "sklearn"
    tokenizer = None  # reads the whole raw text

    def __init__(self, folder: Path, meta: ModelMeta, **_):
        from safetensors.numpy import load_file

        self.meta = meta
        self.vectorizer = load_vectorizer(folder)
        head = load_file(str(folder / "head.safetensors"))
        self.weight, self.bias = head["weight"], head["bias"]

    def logits(self, texts: Sequence[str], *, batch_size: int, progress: str | None = None) -> np.ndarray:
        features = self.vectorizer.transform(list(texts))
        return np.asarray(features @ self.weight.T) + self.bias


def load_vectorizer(folder: Path):
    from safetensors.numpy import load_file
    from sklearn.feature_extraction.text import TfidfVectorizer

    spec = json.loads((folder / "vectorizer.json").read_text(encoding="utf-8"))
    if spec.get("kind") == "hashing":  # a streamed run's features: hashed n-grams, no vocabulary
        from tuneforge.models.hashing import HashedTfidf

        return HashedTfidf.from_spec(spec, load_file(str(folder / "idf.safetensors"))["idf"])
    params = dict(spec["params"], ngram_range=tuple(spec["params"]["ngram_range"]))
    vectorizer = TfidfVectorizer(vocabulary=spec["vocabulary"], **params)
    vectorizer.idf_ = load_file(str(folder / "idf.safetensors"))["idf"]
    return vectorizer


class LstmBackend:
    """Embeddings + BiLSTM learnt from scratch (`method: lstm`), rebuilt from safetensors + lstm.json."""

    name = "torch"

    def __init__(self, folder: Path, meta: ModelMeta, **_):
        from tuneforge.models.lstm import load_lstm

        self.meta = meta
        self.model, self.tokenizer = load_lstm(folder)  # a word tokenizer: chunking and truncation counts work as for transformers

    def logits(self, texts: Sequence[str], *, batch_size: int, progress: str | None = None) -> np.ndarray:
        from tuneforge.models.lstm import lstm_logits

        ids = [self.tokenizer.ids(t, self.meta.max_length) for t in texts]
        return lstm_logits(self.model, ids, batch_size=batch_size, progress=progress)


class OnnxBackend:
    """A sequence-classification graph run by ONNX Runtime (fp32 export or int8-quantized)."""

    name = "onnxruntime"

    def __init__(self, folder: Path, meta: ModelMeta, *, threads: int | None = None, **_):
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
        self._session = ort.InferenceSession(str(folder / meta.extra["file"]), options, providers=["CPUExecutionProvider"])
        self._inputs = [i.name for i in self._session.get_inputs()]

    def run(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """Logits of one tokenized batch (int64 arrays)."""
        return self._session.run(None, {k: batch[k] for k in self._inputs})[0]

    def logits(self, texts: Sequence[str], *, batch_size: int, progress: str | None = None) -> np.ndarray:
        return forward_sorted(
            self.run, self.tokenizer, texts, max_length=self.meta.max_length, batch_size=batch_size, progress=progress, tensors="np"
        )


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
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


BACKENDS = {"transformer": TransformerBackend, "head": HeadBackend, "tfidf": TfidfBackend, "lstm": LstmBackend, "onnx": OnnxBackend}


def load_backend(folder: Path, meta: ModelMeta, *, auto_model: str, threads: int | None = None) -> Backend:
    """`threads` caps the compute threads (ONNX Runtime per session; PyTorch process-wide)."""
    if threads and meta.kind in ("transformer", "head", "lstm"):
        import torch

        torch.set_num_threads(threads)
    return BACKENDS[meta.kind](folder, meta, auto_model=auto_model, threads=threads)
