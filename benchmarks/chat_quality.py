"""The chat bot four ways on the same knowledge base and test queries, side by side; one table, one JSON.

    python benchmarks/chat_quality.py [--config examples/faq-bot.yaml] [--max-documents 300] [--sft-steps 60]
    python benchmarks/chat_quality.py --run runs/<a chat run with fine_tune enabled>   # reuse a run

One `tuneforge train` run (fine-tuning enabled) builds the index, the thresholds
(chosen on the validation queries) and the LoRA adapter; then the test queries are
answered by:
- `faq-only`: FAQ retrieval alone — a close FAQ answer verbatim, otherwise a handoff;
- `base-no-retrieval`: the base generator alone, no passages, never hands over;
- `base-rag`: the base generator answering from the top-k retrieved entries;
- `tuned-rag`: the fine-tuned generator (LoRA SFT on the FAQ pairs) with retrieval.
Retrieval columns (hit@k, MRR) do not apply to the generator alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
COLUMNS = (
    "hit@1",
    "hit@5",
    "mrr",
    "token_f1",
    "rouge_l",
    "groundedness",
    "handoff_precision",
    "handoff_recall",
    "latency_mean_s",
    "ttft_mean_s",
    "tokens_per_s",
)


def build_run(args) -> Path:
    from tuneforge.config import load_config
    from tuneforge.engine.run import train

    overrides = [
        "chat.fine_tune.enabled=true",
        f"chat.fine_tune.steps={args.sft_steps}",
        f"chat.fine_tune.max_examples={args.sft_examples}",
        f"chat.max_new_tokens={args.max_new_tokens}",
        f"output.dir={args.runs_dir}",
        "output.name=chat-quality",
        f"train.seed={args.seed}",
    ]
    if args.max_documents:
        overrides.append(f"chat.max_documents={args.max_documents}")
    if args.max_queries:
        overrides.append(f"chat.eval_max_queries={args.max_queries}")
    return train(load_config(args.config, overrides)).run_dir


def variants(run_dir: Path):
    from tuneforge.tasks.chat.runtime import ChatBot

    yield "faq-only", ChatBot.load(run_dir, generator=False)
    base = ChatBot.load(run_dir, use_adapter=False)
    yield "base-no-retrieval", base.with_policy(use_retrieval=False)
    yield "base-rag", base
    del base
    yield "tuned-rag", ChatBot.load(run_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("examples/faq-bot.yaml"))
    parser.add_argument("--run", type=Path, help="Reuse this chat run (built with chat.fine_tune.enabled) instead of training one.")
    parser.add_argument("--max-documents", type=int, default=None, help="chat.max_documents (default: the config's)")
    parser.add_argument("--max-queries", type=int, default=None, help="chat.eval_max_queries per split (default: all)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--sft-steps", type=int, default=60)
    parser.add_argument("--sft-examples", type=int, default=400)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/benchmark-chat"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/chat_quality.json"))
    args = parser.parse_args()

    from tuneforge.rundir import RunDir
    from tuneforge.tasks.chat.evaluation import evaluate_bot

    run_dir = args.run or build_run(args)
    run = RunDir.open(run_dir)
    test = run.read_split("test")
    rows = []
    for name, bot in variants(run.path):
        metrics, _ = evaluate_bot(bot, test, max_tokens=args.max_new_tokens, progress=name)
        if not bot.policy.use_retrieval:
            metrics.update({"hit@1": None, "hit@5": None, "mrr": None})
        rows.append({"variant": name, **{k: metrics.get(k) for k in COLUMNS}, "modes": metrics["modes"], "by_kind": metrics["by_kind"]})
        print(f"{name}: {json.dumps({k: rows[-1][k] for k in COLUMNS})}", file=sys.stderr)
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    print(
        f"\n{len(test)} test queries; thresholds {run.info().get('train', {}).get('faq_threshold')} (FAQ) / "
        f"{run.info().get('train', {}).get('handoff_threshold')} (handoff)\n"
    )
    print("| variant | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for row in rows:
        print(f"| {row['variant']} | " + " | ".join(fmt(row[k]) for k in COLUMNS) + " |")
    result = {
        "run_dir": str(run.path),
        "test_queries": len(test),
        "train_info": run.info().get("train", {}),
        "rows": rows,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten: {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
