"""Runtime variants: ONNX export, ONNX Runtime int8 and PyTorch int8 of a PyTorch model folder.

Each builds one variant folder that `Predictor.load` can open.

A variant folder holds its weights, the tokenizer and `tuneforge.json`, so it is
a model like any other; variants live in `RUN_DIR/compress/<name>/`.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np

from tuneforge.atomic import atomic_dir
from tuneforge.errors import MissingDependencyError, TuneforgeError
from tuneforge.models.artifact import ModelMeta

logger = logging.getLogger(__name__)
ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
PARITY_MAX_ABS = 1e-3


class CompressionError(TuneforgeError, ValueError):
    """A run cannot be compressed as asked, or a compressed model broke parity."""


def _require(module: str, extra: str = "compress"):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(f"compression needs {module}: pip install 'tuneforge[{extra}]'") from None


def _copy_tokenizer(source: Path, target: Path) -> None:
    for path in source.iterdir():
        if path.is_file() and ("token" in path.name or path.name in ("vocab.txt", "special_tokens_map.json", "config.json")):
            shutil.copy2(path, target / path.name)


def export_onnx(model_dir: Path, meta: ModelMeta, out_dir: Path, *, check_texts: list[str]) -> dict:
    """fp32 ONNX graph with dynamic batch and sequence axes; parity checked against PyTorch."""
    _require("onnx")
    import torch
    from transformers import AutoTokenizer

    from tuneforge.models.surgery import load_classifier_dir

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    # eager attention: its masking traces to plain ops that keep both axes dynamic
    model = load_classifier_dir(model_dir, meta, attn_implementation="eager")
    sample = tokenizer(["a short text", "and a somewhat longer second text"], return_tensors="pt", padding=True)
    names = [k for k in ONNX_INPUTS if k in sample]
    axes = {k: {0: "batch", 1: "sequence"} for k in names} | {"logits": {0: "batch"}}
    with atomic_dir(out_dir) as tmp:
        torch.onnx.export(
            model,
            tuple(sample[k] for k in names),
            str(tmp / "model.onnx"),
            input_names=names,
            output_names=["logits"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
        _copy_tokenizer(model_dir, tmp)
        replace(meta, kind="onnx", extra={**meta.extra, "file": "model.onnx", "variant": out_dir.name}).write(tmp)
        parity = check_parity(model, tokenizer, tmp, meta, check_texts)
        if parity["max_abs_logit_diff"] > PARITY_MAX_ABS or parity["parity_agreement"] < 1.0:
            raise CompressionError(
                f"ONNX export broke parity: max |logit diff| {parity['max_abs_logit_diff']:.2e} (limit {PARITY_MAX_ABS}), "
                f"agreement with PyTorch {parity['parity_agreement']:.4f}"
            )
    return parity


def check_parity(model, tokenizer, onnx_dir: Path, meta: ModelMeta, texts: list[str]) -> dict:
    from tuneforge.models.encode import classifier_logits
    from tuneforge.predict.backends import OnnxBackend

    reference = classifier_logits(model, tokenizer, texts, max_length=meta.max_length, batch_size=32)
    logits = OnnxBackend(onnx_dir, ModelMeta.read(onnx_dir)).logits(texts, batch_size=32)
    return {
        "max_abs_logit_diff": float(np.abs(logits - reference).max()),
        "parity_agreement": float((logits.argmax(1) == reference.argmax(1)).mean()),  # with the PyTorch model it came from
        "parity_texts": len(texts),
    }


def quantize_onnx(onnx_dir: Path, out_dir: Path) -> dict:
    """Dynamic int8 (weights int8, activations quantized on the fly) with ONNX Runtime's quantizer."""
    quantization = _require("onnxruntime.quantization")
    meta = ModelMeta.read(onnx_dir)
    with atomic_dir(out_dir) as tmp:
        quantization.quantize_dynamic(
            str(onnx_dir / "model.onnx"), str(tmp / "model.int8.onnx"), weight_type=quantization.QuantType.QInt8, per_channel=True
        )
        _copy_tokenizer(onnx_dir, tmp)
        replace(meta, extra={**meta.extra, "file": "model.int8.onnx", "variant": out_dir.name}).write(tmp)
    return {}


def torch_int8(model_dir: Path, meta: ModelMeta, out_dir: Path) -> dict:
    """PyTorch dynamic int8 of the Linear layers, applied at load time (fp32 weights on disk)."""
    with atomic_dir(out_dir) as tmp:
        for path in model_dir.iterdir():
            if path.is_file():
                shutil.copy2(path, tmp / path.name)
        replace(meta, extra={**meta.extra, "quantize": "torch-int8", "variant": out_dir.name}).write(tmp)
    return {"note": "saves time, not disk: weights are stored fp32 and quantized when loaded"}


RUNTIMES = ("onnx", "int8", "torch-int8")  # ways to run a model faster, applied to the original and to faster students
