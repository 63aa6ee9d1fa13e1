"""Loading pretrained and saved models safely: safetensors only, remote code only when asked,
and a config error naming `model.name` when weights cannot be found."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from tuneforge.errors import ConfigError

REPORT_STATUSES = ("MISSING", "UNEXPECTED", "MISMATCH", "CONVERSION")


class PoolerOnlyReportFilter(logging.Filter):
    """Drops transformers' load report when all it reports is the pooler a mean-pooled model never saved.

    A mean-pooled classifier (models/pooling.py) has no pooler weights by design; the report would call
    them missing and advise training, on every load. Any other key in the report lets it through."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "LOAD REPORT" not in message:
            return True
        rows = [line for line in message.splitlines() if "|" in line and any(status in line for status in REPORT_STATUSES)]
        return not rows or not all(".pooler." in line.split("|")[0] for line in rows)


@contextlib.contextmanager
def _quiet_pooler_report(active: bool):
    logger = logging.getLogger("transformers.modeling_utils")
    report_filter = PoolerOnlyReportFilter()
    if active:
        logger.addFilter(report_filter)
    try:
        yield
    finally:
        logger.removeFilter(report_filter)


def auto_class(name: str):
    """A transformers auto class by name (`AutoModelForSequenceClassification`, ...)."""
    import transformers

    return getattr(transformers, name)


def _cannot_load(name: str, exc: Exception) -> ConfigError:
    return ConfigError(
        f"model.name={name!r}: could not load ({exc}); use a packaged alias such as 'minilm-l6' or a local folder with safetensors weights"
    )


def load_tokenizer(path: str | Path, *, name: str, remote: bool = False):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=remote)
    except OSError as exc:
        raise _cannot_load(name, exc) from None


def load_pretrained(path: str | Path, *, auto_model: str, name: str, remote: bool = False, **kwargs):
    """Pretrained weights under a task's head (new head weights are initialised, as expected when fine-tuning)."""
    try:
        return auto_class(auto_model).from_pretrained(path, use_safetensors=True, trust_remote_code=remote, **kwargs)
    except OSError as exc:
        raise _cannot_load(name, exc) from None


def load_encoder(path: str | Path, *, name: str, remote: bool = False):
    """The bare encoder (no head), in eval mode: what sentence embeddings come from."""
    return load_pretrained(path, auto_model="AutoModel", name=name, remote=remote).eval()


def load_saved_model(folder: Path, meta, auto_model: str, **kwargs):
    """A model folder tuneforge saved: pruned attention heads rebuilt before its weights load, its pooling re-applied."""
    from tuneforge.models.pooling import apply_saved_pooling

    if meta.extra.get("pruned_heads"):
        from tuneforge.models.surgery import load_classifier_dir

        return load_classifier_dir(folder, meta, **kwargs)
    with _quiet_pooler_report(meta.extra.get("pooling") == "mean"):
        model = auto_class(auto_model).from_pretrained(folder, use_safetensors=True, **kwargs)
    return apply_saved_pooling(model, meta).eval()
