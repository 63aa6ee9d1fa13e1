"""Generation speed of the chat bot vs plain `transformers` `generate`, same model, same prompts, side by side.

    python benchmarks/chat_speed.py [--run RUN] [--queries 12] [--max-new-tokens 48]

Without `--run`, one chat run is built from examples/faq-bot.yaml (no fine-tuning,
`--max-documents` articles). The questions are the in-scope test queries of
`bundled:chat-eval` (kinds `--kinds`, default document and faq: 43 queries), each
answered by the generator from the bot's retrieved passages (FAQ shortcut and handoff
off, so every query exercises the generator); every variant answers from the same
prompt, greedy, up to `--max-new-tokens` tokens:

- `plain generate`: `model.generate(input_ids, max_new_tokens=N)` with the library's
  defaults (dynamic KV cache, fp32) — what a hand-written script does; its time to first
  token is a separate `generate` of one token (the prompt's prefill);
- `tuneforge ask`: `ChatBot.answer` (streamed generation, preallocated static KV cache, the
  prompt read on all threads and the tokens after it generated on `chat.decode_threads`, 1);
- `tuneforge ask, int8`: the same with the generator's `int8` recipe
  (`tuneforge compress RUN --methods int8`, or `ChatBot.load(variant="int8")`; see
  src/tuneforge/models/causal_speed.py: int8 MLP gate/up projections, bf16 output layer).

Prints tokens/s, time to first token, answer token-F1 against the references, the share
of answers identical to plain generate's, and the speed ratio to plain generate; writes
benchmarks/results/chat_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parent.parent


def build_run(args) -> Path:
    from tuneforge.config import load_config
    from tuneforge.engine.run import train

    overrides = [
        f"chat.max_documents={args.max_documents}",
        f"chat.max_new_tokens={args.max_new_tokens}",
        "chat.eval_max_queries=4",  # the run's own evaluation is not what this measures
        f"output.dir={args.runs_dir}",
        "output.name=chat-speed",
    ]
    return train(load_config(ROOT / "examples" / "faq-bot.yaml", overrides)).run_dir


def prompt_for(bot, question: str) -> list[int]:
    from tuneforge.tasks.chat.generation import build_prompt
    from tuneforge.tasks.chat.runtime import context_of

    ranked, _ = bot.retrieve([{"role": "user", "content": question}])
    passages = [{"context": context_of(e), "source": e.source} for e, _ in ranked[: bot.policy.top_k]]
    return build_prompt(bot.tokenizer, [], question, passages, passage_tokens=bot.policy.max_passage_tokens)


def plain_generate(model, tokenizer, prompt: list[int], max_new_tokens: int) -> dict:
    import torch

    ids = torch.tensor([prompt])
    mask = torch.ones_like(ids)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    started = time.perf_counter()
    model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=1, do_sample=False, pad_token_id=pad)
    ttft = time.perf_counter() - started
    started = time.perf_counter()
    out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad)
    seconds = time.perf_counter() - started
    new = out[0][len(prompt) :]
    n = len(new)
    return {
        "text": tokenizer.decode(new, skip_special_tokens=True).strip(),
        "ttft_s": ttft,
        "tokens_per_s": (n - 1) / max(seconds - ttft, 1e-9) if n > 1 else None,
        "tokens": n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="an existing chat run with a generator")
    parser.add_argument("--queries", type=int, default=0, help="at most this many queries (0: all)")
    parser.add_argument("--kinds", default="document,faq", help="query kinds of bundled:chat-eval to answer")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--max-documents", type=int, default=100)
    parser.add_argument("--runs-dir", default="/tmp/chat-speed-runs")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "chat_speed.json"))
    args = parser.parse_args()

    import numpy as np

    from tuneforge.data.bundled import load_chat_eval
    from tuneforge.tasks.chat.metrics import paired_difference, token_f1
    from tuneforge.tasks.chat.runtime import ChatBot

    run = Path(args.run) if args.run else build_run(args)
    queries = load_chat_eval()
    queries = queries[queries["kind"].isin(args.kinds.split(",")) & (queries["split"] == "test")]
    queries = queries.head(args.queries) if args.queries else queries
    bot = ChatBot.load(run, variant="original")
    int8 = ChatBot.load(run, variant="original", quantize="int8")
    rows: dict[str, list[dict]] = {"plain generate": [], "tuneforge ask": [], "tuneforge ask, int8": []}
    for question, reference in zip(queries["text"], queries["label"]):
        prompt = prompt_for(bot, question)
        plain = plain_generate(bot.model, bot.tokenizer, prompt, args.max_new_tokens)
        rows["plain generate"].append({**plain, "f1": token_f1(plain["text"], reference), "same_as_plain": True})
        for name, which in (("tuneforge ask", bot), ("tuneforge ask, int8", int8)):
            answer = which.with_policy(use_faq=False, handoff_threshold=-1.0).answer(
                [{"role": "user", "content": question}], max_tokens=args.max_new_tokens
            )
            rows[name].append(
                {
                    "text": answer.text,
                    "ttft_s": answer.timings.get("ttft_seconds"),
                    "tokens_per_s": answer.timings.get("tokens_per_s"),
                    "tokens": answer.usage["completion_tokens"],
                    "f1": token_f1(answer.text, reference),
                    "same_as_plain": answer.text == plain["text"],
                }
            )
        print(f"{question[:60]!r}: " + ", ".join(f"{k} {v[-1]['tokens_per_s'] or 0:.1f} tok/s" for k, v in rows.items()), flush=True)

    def mean(values):
        values = [v for v in values if v is not None]
        return float(np.mean(values)) if values else None

    summary = {
        name: {
            "tokens_per_s": mean([r["tokens_per_s"] for r in results]),
            "ttft_s": mean([r["ttft_s"] for r in results]),
            "answer_f1": mean([r["f1"] for r in results]),
            "tokens": mean([r["tokens"] for r in results]),
            "same_as_plain": mean([float(r["same_as_plain"]) for r in results]),
        }
        for name, results in rows.items()
    }
    plain_f1 = [r["f1"] for r in rows["plain generate"]]
    for name, results in rows.items():
        summary[name]["f1_vs_plain"] = paired_difference([r["f1"] for r in results], plain_f1)
    base = summary["plain generate"]["tokens_per_s"]
    for values in summary.values():
        values["speed_vs_plain"] = round(values["tokens_per_s"] / base, 3) if base and values["tokens_per_s"] else None
    print(f"\n{'variant':<22}{'tokens/s':>10}{'x plain':>9}{'TTFT s':>9}{'answer F1':>11}{'F1 - plain [95% CI]':>26}{'same':>7}")
    for name, v in summary.items():
        d = v["f1_vs_plain"]
        diff = f"{d['mean']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]"
        print(
            f"{name:<22}{v['tokens_per_s']:>10.1f}{v['speed_vs_plain']:>9.2f}{v['ttft_s']:>9.3f}{v['answer_f1']:>11.3f}"
            f"{diff:>26}{v['same_as_plain']:>7.2f}"
        )
    report = {
        "run": str(run),
        "queries": len(queries),
        "max_new_tokens": args.max_new_tokens,
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "summary": summary,
        "answers": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
