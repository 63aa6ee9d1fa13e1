"""`tuneforge ask` and `tuneforge chat`: one answer as JSON, or a conversation in the terminal, from a chat run.

Registered on the one `app` (`tuneforge.cli_common`; `tuneforge.cli` imports this module).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from tuneforge.cli_common import UsageProblem, app, err, out, tradeoff_table


@app.command()
def ask(
    run_dir: Annotated[Path, typer.Argument(help="A chat run directory (or its model/ folder).")],
    question: Annotated[str, typer.Argument(help="The question.")],
    max_tokens: Annotated[
        Optional[int], typer.Option(min=1, max=4096, help="Longest generated answer (default chat.max_new_tokens).")
    ] = None,
    temperature: Annotated[float, typer.Option(min=0, max=2, help="0: greedy (reproducible); higher: more varied.")] = 0.0,
    no_generator: Annotated[bool, typer.Option("--no-generator", help="FAQ answers and handoffs only (no generation).")] = False,
    variant: Annotated[
        str, typer.Option(help="original, auto (what `tuneforge compress` recommended, if it ran) or a variant such as int8.")
    ] = "auto",
) -> None:
    """Answer one question; prints the answer as JSON (text, mode, handoff and reason, sources, usage, timings)."""
    from tuneforge.tasks.chat.runtime import ChatBot

    if not question.strip():
        raise UsageProblem("QUESTION is empty")
    bot = ChatBot.load(run_dir, generator=not no_generator, variant=variant)
    answer = bot.answer([{"role": "user", "content": question}], max_tokens=max_tokens, temperature=temperature)
    print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))


@app.command()
def chat(
    run_dir: Annotated[Path, typer.Argument(help="A chat run directory (or its model/ folder).")],
    max_tokens: Annotated[
        Optional[int], typer.Option(min=1, max=4096, help="Longest generated answer (default chat.max_new_tokens).")
    ] = None,
    temperature: Annotated[float, typer.Option(min=0, max=2, help="0: greedy (reproducible); higher: more varied.")] = 0.0,
    variant: Annotated[
        str, typer.Option(help="original, auto (what `tuneforge compress` recommended, if it ran) or a variant such as int8.")
    ] = "auto",
) -> None:
    """Talk to a chat run: answers stream as they are written, sources follow; the conversation is remembered.

    Type /reset to forget the conversation, /exit (or Ctrl-D) to leave."""
    from tuneforge.tasks.chat.runtime import Answer, ChatBot

    bot = ChatBot.load(run_dir, variant=variant)
    err.print(f"chat with {run_dir} — /reset forgets the conversation, /exit or Ctrl-D leaves")
    history: list[dict] = []
    while True:
        try:
            line = input("you> ") if sys.stdin.isatty() else sys.stdin.readline()
        except (EOFError, KeyboardInterrupt):
            break
        if line == "" and not sys.stdin.isatty():  # end of piped input
            break
        line = line.strip()
        if not line:
            continue
        if line in ("/exit", "/quit"):
            break
        if line == "/reset":
            history = []
            err.print("(conversation forgotten)")
            continue
        history.append({"role": "user", "content": line})
        out.print("bot> ", end="")
        answer = None
        try:
            for item in bot.stream(history, max_tokens=max_tokens, temperature=temperature):
                if isinstance(item, Answer):
                    answer = item
                else:
                    out.print(item, end="", markup=False, highlight=False)
        except KeyboardInterrupt:
            out.print("\n(stopped)")
            history.pop()
            continue
        out.print()
        _show_sources(answer)
        history.append({"role": "assistant", "content": answer.text})


def _show_sources(answer) -> None:
    if answer.handoff:
        err.print(f"[bold yellow]handed over to a person[/]: {answer.reason}")
        return
    label = "FAQ answer" if answer.mode == "faq" else "sources"
    for n, source in enumerate(answer.sources, start=1):
        where = source["source"] + (f" (passage {source['position']})" if source.get("position") is not None else "")
        err.print(f"  [{n}] {label}: {where}  similarity {source['score']:.2f}", markup=False, highlight=False)
    timings = answer.timings
    if answer.mode == "generated" and timings.get("tokens_per_s"):
        err.print(
            f"  {answer.usage['completion_tokens']} tokens, first after {timings['ttft_seconds']:.2f} s, {timings['tokens_per_s']:.1f} tokens/s"
        )


@app.command()
def kb(
    run_dir: Annotated[Path, typer.Argument(help="A chat run directory (or its model/ folder).")],
    add_faq: Annotated[Optional[Path], typer.Option(help="Add the question/answer rows of this file (csv / jsonl / parquet).")] = None,
    add_documents: Annotated[Optional[str], typer.Option(help="Add these documents: a .txt/.md/.html file, folder or glob.")] = None,
    remove: Annotated[Optional[list[str]], typer.Option(help="Remove every entry of this source (repeatable).")] = None,
) -> None:
    """Add or remove knowledge-base entries of a chat run in place, embedding only what is new (no rebuild)."""
    from tuneforge.rundir import RunDir, find_model_dir
    from tuneforge.tasks.chat.knowledge import read_documents, read_faq
    from tuneforge.tasks.chat.runtime import ChatBot

    if add_faq is None and add_documents is None and not remove:
        raise UsageProblem("give --add-faq FILE, --add-documents PATH and/or --remove SOURCE")
    folder = find_model_dir(run_dir)
    chat_settings = RunDir(folder.parent).read_config().chat if (folder.parent / "config.yaml").is_file() else None
    bot = ChatBot.load(folder, generator=False)
    before = len(bot.entries)
    for source in remove or []:
        if bot.remove(source=source) == 0:
            err.print(f"no entry has source {source!r}")
    if add_faq is not None:
        if chat_settings is None:
            raise UsageProblem("--add-faq needs the run's config.yaml (column names); give the run directory")
        frame = read_faq(str(add_faq), chat_settings)
        bot.add_faq([{"question": q, "answer": a, "category": c, "source": s} for q, a, c, s in frame.itertuples(index=False)])
    if add_documents is not None:
        for source, text in read_documents(add_documents):
            bot.add_document(source, text)
    bot.save(folder)
    err.print(f"{before} entries before, {len(bot.entries)} now")
    print(folder)


def print_chat_tradeoffs(report: dict) -> None:
    """The table `tuneforge compress` prints for a chat run."""
    table = tradeoff_table(
        f"generator variants on {report['split_rows']} {report['split']} queries (* recommended)",
        ("tokens/s", "TTFT s", "answer F1", "ROUGE-L", "grounded", "same answer"),
    )
    fmt = lambda v, spec: "n/a" if v is None else format(v, spec)  # noqa: E731
    for r in report["variants"]:
        table.add_row(
            r["variant"] + (" *" if r["variant"] == report["recommended"] else ""),
            fmt(r["tokens_per_s"], ".1f"),
            fmt(r["ttft_mean_s"], ".2f"),
            fmt(r["token_f1"], ".3f"),
            fmt(r["rouge_l"], ".3f"),
            fmt(r["groundedness"], ".3f"),
            fmt(r["same_answer"], ".2f"),
        )
    out.print(table)
    budget = report["accuracy_budget_points"]
    out.print(f"recommended (fastest within {budget} answer-F1 points of the original): {report['recommended']}")
