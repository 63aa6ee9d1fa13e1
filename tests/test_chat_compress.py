"""Faster generators for chat runs: the int8 recipe, the static KV cache, decode threads, `tuneforge compress` on a chat run."""

from __future__ import annotations

import json

import pytest
import torch
from chat_fixtures import build_models, chat_config

from tuneforge.compress.run import compress_run
from tuneforge.compress.settings import CompressSettings
from tuneforge.engine.run import train
from tuneforge.errors import ConfigError, RunError
from tuneforge.models.causal_speed import BFloat16Linear, speed_up, static_cache_kwargs
from tuneforge.rundir import RunDir
from tuneforge.tasks.chat.compress import recommend
from tuneforge.tasks.chat.generation import stream_generate
from tuneforge.tasks.chat.runtime import ChatBot

from conftest import run_cli

BATTERY = "how long does the zephyr battery last"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return build_models(tmp_path_factory.mktemp("chat-models"))


@pytest.fixture(scope="module")
def run_dir(models, tmp_path_factory):
    return train(chat_config(models, tmp_path_factory.mktemp("chat-run"))).run_dir


def _tiny_llama(tied: bool):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=tied,
    )
    return LlamaForCausalLM(config).eval()


def test_int8_quantizes_only_the_mlp_input_projections_and_keeps_the_logits():
    model = _tiny_llama(tied=True)
    ids = torch.randint(0, 64, (3, 12))
    with torch.inference_mode():
        before = model(input_ids=ids).logits
    embedding = model.get_input_embeddings().weight.detach().clone()
    info = speed_up(model, "int8")
    quantized = [n for n, m in model.named_modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]
    assert info["int8_layers"] == 4 and sorted({n.rsplit(".", 1)[-1] for n in quantized}) == ["gate_proj", "up_proj"]
    assert all(isinstance(layer.self_attn.q_proj, torch.nn.Linear) for layer in model.model.layers)  # attention stays fp32
    assert all(type(layer.mlp.down_proj) is torch.nn.Linear for layer in model.model.layers)  # so does the down projection
    # the input embedding it was tied to is untouched fp32
    assert model.get_input_embeddings().weight.dtype == torch.float32
    assert torch.equal(model.get_input_embeddings().weight, embedding)
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        assert info["output_layer"] == "bfloat16" and isinstance(model.get_output_embeddings(), BFloat16Linear)
    with torch.inference_mode():
        after = model(input_ids=ids).logits
    assert after.dtype == torch.float32
    relative = (after - before).abs().max() / before.abs().max()
    assert relative < 0.05, f"int8 changed the logits by {relative:.3f} of their range"
    with pytest.raises(ConfigError, match="quantize: one of int8"):
        speed_up(model, "int4")


def test_the_static_cache_gives_the_same_tokens_as_plain_generate(run_dir):
    bot = ChatBot.load(run_dir)
    assert static_cache_kwargs(bot.model) == {"cache_implementation": "static"}
    prompt = bot.tokenizer("the zephyr battery lasts two days", add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        plain = bot.model.generate(
            input_ids=torch.tensor([prompt]), max_new_tokens=6, do_sample=False, pad_token_id=bot.tokenizer.pad_token_id
        )[0][len(prompt) :]
    *_, stats = stream_generate(bot.model, bot.tokenizer, prompt, max_new_tokens=6, temperature=0.0)
    assert stats.completion_tokens == 6
    assert stats.text == bot.tokenizer.decode(plain, skip_special_tokens=True)


def test_compressing_a_chat_run_writes_a_recipe_variant_measured_beside_the_original(run_dir, monkeypatch, capsys):
    code, stdout, _ = run_cli(monkeypatch, capsys, "compress", run_dir)
    assert code in (0, None)
    run = RunDir(run_dir)
    report = json.loads(run.tradeoffs_file.read_text())
    assert report["task"] == "chat" and [r["variant"] for r in report["variants"]] == ["original", "int8"]
    original, int8 = report["variants"]
    assert original["same_answer"] == 1.0 and 0.0 <= int8["same_answer"] <= 1.0
    assert original["generated"] >= 1 and int8["generated"] == original["generated"]
    assert report["recommended"] == recommend(report["variants"], report["accuracy_budget_points"])
    assert run.tradeoffs_plot.is_file() and "generator variants" in stdout and "int8" in stdout
    # the variant is a recipe over the original's files, not a copy of them
    variant = run.variant_dir("int8")
    assert sorted(p.name for p in variant.iterdir()) == ["tuneforge.json"]
    meta = json.loads((variant / "tuneforge.json").read_text())
    assert meta["extra"]["quantize"] == "int8" and meta["extra"]["variant"] == "int8"
    bot = ChatBot.load(run_dir, variant="int8")
    assert any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in bot.model.modules())
    assert bot.answer([{"role": "user", "content": BATTERY}], max_tokens=2).usage["completion_tokens"] == 2
    plain = ChatBot.load(run_dir, variant="original")
    assert not any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in plain.model.modules())
    auto = ChatBot.load(run_dir, variant="auto")
    assert auto.meta.extra.get("variant", "original") == report["recommended"]
    code, stdout, _ = run_cli(monkeypatch, capsys, "ask", run_dir, BATTERY, "--variant", "int8", "--max-tokens", "2")
    assert code in (0, None) and json.loads(stdout)["usage"]["completion_tokens"] == 2


def test_the_recommendation_is_the_fastest_within_the_answer_f1_budget():
    rows = [
        {"variant": "original", "tokens_per_s": 20.0, "token_f1": 0.30},
        {"variant": "int8", "tokens_per_s": 30.0, "token_f1": 0.298},
    ]
    assert recommend(rows, 0.5) == "int8"
    assert recommend(rows, 0.1) == "original"
    assert recommend([{**rows[0], "token_f1": None}, rows[1]], 0.5) == "original"


def test_chat_compress_refuses_unknown_methods_and_bots_without_a_generator(run_dir, models, tmp_path):
    with pytest.raises(ConfigError, match="a chat run's generator is compressed with int8; got onnx"):
        compress_run(run_dir, methods=["onnx"])
    faq_only = train(chat_config(models, tmp_path, generator="none")).run_dir
    with pytest.raises(RunError, match="no generator"):
        compress_run(faq_only, methods=["int8"], settings=CompressSettings(chat_queries=2))


def test_tokens_after_the_prompt_are_generated_on_decode_threads_and_the_setting_is_restored(run_dir, monkeypatch):
    bot = ChatBot.load(run_dir)
    assert bot.policy.decode_threads == 1  # the config default, saved with the policy
    before = torch.get_num_threads()
    calls = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (calls.append(n), real(n)))
    prompt = bot.tokenizer("the zephyr battery lasts two days", add_special_tokens=False)["input_ids"]
    *_, stats = stream_generate(bot.model, bot.tokenizer, prompt, max_new_tokens=4, temperature=0.0, decode_threads=1)
    assert stats.completion_tokens == 4
    assert calls == [before, 1, before]  # prefill with the caller's threads, then 1, then back
    assert torch.get_num_threads() == before
    calls.clear()
    *_, stats = stream_generate(bot.model, bot.tokenizer, prompt, max_new_tokens=4, temperature=0.0, decode_threads=0)
    assert calls == [before, before]  # 0: the caller's threads throughout
