"""Distillation and pruning on a tiny model: students train, are smaller, reload, and export."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import BertConfig, BertForSequenceClassification, DistilBertConfig, DistilBertForSequenceClassification

from tuneforge.compress.distill import distill, distillation_loss
from tuneforge.compress.run import compress_run, parse_methods, plan_variants
from tuneforge.compress.settings import CompressSettings, load_compress_settings
from tuneforge.compress.students import heads_to_drop
from tuneforge.config import load_config
from tuneforge.engine.run import train
from tuneforge.errors import ConfigError
from tuneforge.models.surgery import UnsupportedArchitectureError, encoder_layers, head_counts, keep_layers, prune_heads, spread_layers
from tuneforge.predict.predictor import Predictor

from conftest import write_config

SETTINGS = CompressSettings(epochs=2, recover_epochs=1, learning_rate=1e-3, batch_size=8, latency_texts=5, seed=3)


@pytest.fixture(scope="module")
def teacher_run(tiny_bert, tmp_path_factory):
    return train(
        load_config(write_config(tmp_path_factory.mktemp("students"), tiny_bert, method="full", epochs=3, keep="fine-tuned"))
    ).run_dir


@pytest.fixture(scope="module")
def report(teacher_run):
    return compress_run(teacher_run, methods=["distill", "prune", "int8"], settings=SETTINGS)


def rows(report):
    return {r["variant"]: r for r in report["variants"]}


def tiny_classifier(layers=3, heads=4) -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50, hidden_size=32, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=48, num_labels=3
    )
    return BertForSequenceClassification(config).eval()


def test_methods_expand_and_plan_students_with_their_runtimes():
    assert parse_methods(["prune", "int8"]) == ["prune-heads", "prune-magnitude", "onnx", "int8"]
    plan = plan_variants(parse_methods(["distill", "prune", "int8"]))
    assert [name for name, _, _ in plan] == [
        "onnx", "int8", "distill", "distill-onnx", "distill-int8", "prune-heads", "prune-heads-onnx", "prune-heads-int8", "prune-magnitude"
    ]  # fmt: skip
    assert ("distill-int8", "int8", "distill") in plan  # quantizes the student, not the teacher
    with pytest.raises(ConfigError, match="name at least one"):
        parse_methods([])


def test_every_student_is_measured_and_reloads(teacher_run, report):
    measured = rows(report)
    assert set(measured) == {
        "original",
        "onnx",
        "int8",
        "distill",
        "distill-onnx",
        "distill-int8",
        "prune-heads",
        "prune-heads-onnx",
        "prune-heads-int8",
        "prune-magnitude",
    }
    texts = ["The phone was great and wonderful.", "awful, broke in a day"]
    for name in measured:
        predictor = Predictor.load(teacher_run, variant=name)
        probs = predictor.predict_proba(texts)
        assert probs.shape == (2, 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-5), name
        assert predictor.meta.extra.get("variant", "original") == name
    assert report["recommended"] in measured
    # agreement is with the original's predictions on the test split (not the export's parity with its own source)
    from tuneforge.rundir import RunDir

    texts = RunDir(teacher_run).read_split("test")["text"].tolist()
    original = Predictor.load(teacher_run, variant="original").predict_proba(texts).argmax(1)
    for name in ("distill-onnx", "prune-heads-int8"):
        mine = Predictor.load(teacher_run, variant=name).predict_proba(texts).argmax(1)
        assert measured[name]["agreement"] == pytest.approx(float((mine == original).mean()))
        assert "parity_agreement" in measured[name] or name.endswith("int8")


def test_distilled_student_has_fewer_layers_and_parameters(teacher_run, report):
    row = rows(report)["distill"]
    assert row["layers"] == "1 of 2" and row["params_share"] < 0.9 and row["steps"] > 0
    student = Predictor.load(teacher_run, variant="distill").backend.model
    assert student.config.num_hidden_layers == 1 and len(encoder_layers(student)) == 1
    assert row["size_mb"] < rows(report)["original"]["size_mb"]
    assert rows(report)["distill-onnx"]["max_abs_logit_diff"] < 1e-3  # export parity holds for students too


def test_head_pruned_model_keeps_its_structure_after_reload(teacher_run, report):
    row = rows(report)["prune-heads"]
    assert row["heads"] == "2 of 4"  # head_fraction 0.5 of 2 layers x 2 heads, one head left per layer
    predictor = Predictor.load(teacher_run, variant="prune-heads")
    assert head_counts(predictor.backend.model) == [1, 1]
    assert set(predictor.meta.extra["pruned_heads"]) == {"0", "1"}
    assert rows(report)["prune-heads-onnx"]["max_abs_logit_diff"] < 1e-3


def test_magnitude_pruning_reports_and_keeps_its_sparsity(teacher_run, report):
    row = rows(report)["prune-magnitude"]
    assert row["sparsity_encoder_linear"] == pytest.approx(SETTINGS.sparsity, abs=0.01)
    assert 0 < row["sparsity_all_params"] < row["sparsity_encoder_linear"]
    assert row["compressed_size_mb"] < row["size_mb"] and "no time" in row["note"]
    weights = load_file(str(teacher_run / "compress" / "prune-magnitude" / "model.safetensors"))
    encoder = [w for k, w in weights.items() if ".encoder." in k and k.endswith(".weight") and w.dim() == 2]
    zeros = sum(int((w == 0).sum()) for w in encoder) / sum(w.numel() for w in encoder)
    assert zeros == pytest.approx(SETTINGS.sparsity, abs=0.01)  # recovery training did not refill the zeros


def test_removing_a_head_equals_silencing_its_output():
    original, pruned = tiny_classifier(), tiny_classifier()
    drop = {0: [1, 3], 2: [0]}
    prune_heads(pruned, drop)
    size = 32 // 4
    with torch.no_grad():
        for layer, heads in drop.items():
            dense = encoder_layers(original)[layer].attention.output.dense
            for head in heads:
                dense.weight[:, head * size : (head + 1) * size] = 0
    ids = torch.randint(0, 50, (3, 9))
    mask = torch.ones_like(ids)
    mask[2, 6:] = 0
    with torch.no_grad():
        torch.testing.assert_close(pruned(input_ids=ids, attention_mask=mask).logits, original(input_ids=ids, attention_mask=mask).logits)
    assert head_counts(pruned) == [2, 4, 3]
    with pytest.raises(ValueError, match="cannot drop heads"):
        prune_heads(pruned, {0: [0, 1]})  # the layer's last heads


def test_heads_to_drop_takes_the_least_important_and_never_a_layers_last():
    importance = torch.tensor([[0.9, 0.1, 0.2], [0.05, 0.01, 0.8]])
    assert heads_to_drop(importance, [3, 3], 0.5) == {0: [1], 1: [0, 1]}  # the 3 lowest scores
    assert heads_to_drop(importance, [3, 3], 0.9) == {0: [1, 2], 1: [0, 1]}  # 5 asked, 4 possible: each layer keeps one


def test_layer_cutting_and_unsupported_architectures():
    assert spread_layers(6, 3) == [0, 2, 5] and spread_layers(12, 4) == [0, 4, 7, 11] and spread_layers(2, 1) == [1]
    model = keep_layers(tiny_classifier(layers=4), [0, 3])
    assert model.config.num_hidden_layers == 2 and model(input_ids=torch.ones(1, 4, dtype=torch.long)).logits.shape == (1, 3)
    distil = DistilBertForSequenceClassification(DistilBertConfig(vocab_size=50, dim=32, n_layers=2, n_heads=2, hidden_dim=48))
    with pytest.raises(UnsupportedArchitectureError, match="BERT-style encoder"):
        encoder_layers(distil)


def test_distillation_loss_terms():
    student, teacher = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([[0.0, 3.0, 0.0]])
    gold = torch.tensor([1])
    hard = torch.nn.functional.cross_entropy(student, gold)
    assert distillation_loss(student, teacher, gold, temperature=2.0, alpha=0.0) == pytest.approx(float(hard))
    assert distillation_loss(teacher, teacher, gold, temperature=2.0, alpha=1.0) == pytest.approx(0.0, abs=1e-6)
    assert distillation_loss(student, teacher, gold, temperature=2.0, alpha=1.0) > 0


def test_distillation_moves_the_student_toward_the_teacher(tiny_bert):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    texts = ["great phone", "awful lamp", "okay package", "wonderful and great", "broke awful", "arrived today okay"] * 4
    labels = np.array([0, 1, 2, 0, 1, 2] * 4)
    targets = np.eye(3, dtype=np.float32)[labels] * 4.0
    student = BertForSequenceClassification.from_pretrained(tiny_bert, num_labels=3)

    def loss() -> float:
        batch = tokenizer(texts, padding=True, return_tensors="pt")
        with torch.no_grad():
            logits = student.eval()(**batch).logits
        return float(distillation_loss(logits, torch.tensor(targets), torch.tensor(labels), temperature=2.0, alpha=0.5))

    before = loss()
    result = distill(
        student,
        tokenizer,
        texts,
        labels,
        targets,
        epochs=20,
        learning_rate=1e-2,
        batch_size=8,
        temperature=2.0,
        alpha=0.5,
        max_length=16,
        seed=0,
    )
    assert result["steps"] == 60 and loss() < 0.5 * before


def test_compress_settings_name_the_bad_setting():
    assert load_compress_settings(["compress.epochs=2"], accuracy_budget=1.0).accuracy_budget == 1.0
    with pytest.raises(ConfigError, match=r"compress\.sparsity"):
        load_compress_settings(["compress.sparsity=1.5"])
    with pytest.raises(ConfigError, match=r"compress\.layers"):
        load_compress_settings(["compress.layers=2"])
    with pytest.raises(ConfigError, match="start with 'compress.'"):
        load_compress_settings(["train.epochs=2"])


def test_cli_compress_takes_settings_and_prints_the_table(monkeypatch, capsys, tiny_bert, tmp_path):
    import sys

    from tuneforge.cli import main

    run = train(load_config(write_config(tmp_path, tiny_bert, method="full", epochs=1, keep="fine-tuned"))).run_dir
    argv = [
        "tuneforge",
        "compress",
        str(run),
        "--methods",
        "distill",
        "--budget",
        "2",
        "--set",
        "compress.epochs=1",
        "--set",
        "compress.latency_texts=3",
    ]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as info:
        main()
    out = capsys.readouterr().out
    assert info.value.code == 0
    assert "distill" in out and "within 2.0 accuracy points" in out and out.strip().splitlines()[-1] == str(run / "compress")
    saved = json.loads((run / "compress" / "tradeoffs.json").read_text())
    assert saved["settings"]["epochs"] == 1 and saved["accuracy_budget_points"] == 2

    monkeypatch.setattr(sys, "argv", ["tuneforge", "compress", str(run), "--set", "compress.sparsity=2"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2 and "compress.sparsity" in capsys.readouterr().err
