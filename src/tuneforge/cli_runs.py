"""`tuneforge recommend`, `explain`, `report` and `forget`: using a trained run beyond predicting with it.

They register on the one `app` (`tuneforge.cli_common`; `tuneforge.cli` imports this module), share its
consoles and error handling, and stay thin: parse, call one library function, print.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from tuneforge.cli_common import UsageProblem, _exit_on_sigterm, _print_result, app, err, out


@app.command()
def recommend(
    run_dir: Annotated[Path, typer.Argument(help="A recommend run directory (or its model/ folder).")],
    user: Annotated[Optional[str], typer.Option(help="Recommend for this user id.")] = None,
    items: Annotated[
        Optional[str], typer.Option(help="Comma-separated recent item ids (an anonymous session, or added to --user's past).")
    ] = None,
    item: Annotated[Optional[str], typer.Option(help="Items similar to this item id.")] = None,
    segment: Annotated[
        Optional[list[str]], typer.Option(help="A new user's user-table columns: --segment gender=F --segment age_group=25-34.")
    ] = None,
    k: Annotated[int, typer.Option(min=1, max=1000, help="How many items.")] = 10,
    exclude_seen: Annotated[bool, typer.Option("--exclude-seen/--include-seen", help="Leave out items the user already has.")] = True,
    filters: Annotated[
        Optional[list[str]], typer.Option("--filter", help="Only items whose attribute matches: --filter genres=Comedy (repeatable).")
    ] = None,
    input: Annotated[Optional[Path], typer.Option("--input", "-i", help="File of user ids to score (csv / jsonl / parquet).")] = None,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Where to write their recommendations (never the input).")
    ] = None,
    user_column: Annotated[str, typer.Option(help="User-id column of --input.")] = "user",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")] = False,
) -> None:
    """Top-k items for a user or a session, items similar to an item, or a whole file of users into another file."""
    from tuneforge.predict.files import score_file
    from tuneforge.tasks.recommend.runtime import Recommender

    asked = [
        name
        for name, given in (
            ("--user/--items", user is not None or items is not None),
            ("--item", item is not None),
            ("--input", input is not None),
        )
        if given
    ]
    if len(asked) != 1:
        raise UsageProblem("give one of --user (and/or --items), --item, or --input FILE --output FILE")
    if (input is None) != (output is None):
        raise UsageProblem("--input and --output go together")
    wanted, described = _pairs(filters, "--filter", "genres=Comedy"), _pairs(segment, "--segment", "gender=F")
    recommender = Recommender.load(run_dir)
    if input is not None:
        recommender.k = k
        with _exit_on_sigterm():
            stats = score_file(recommender, input, output, text_column=user_column)
        err.print(f"scored {stats['rows']} users in {stats['seconds']} s")
        print(stats["output"])
        return
    if item is not None:
        ranked = recommender.similar(item, k=k, filters=wanted)
    else:
        recent = [x.strip() for x in items.split(",") if x.strip()] if items else None
        ranked, known = recommender.recommend(user=user, items=recent, segment=described, k=k, exclude_seen=exclude_seen, filters=wanted)
        if user is not None and not known:
            err.print(
                f"user {user!r} is new to this model: {'their recent items decide' if recent else 'popular items of their segment, or of everyone'}"
            )
    if as_json:
        for rank, (item_id, score) in enumerate(ranked, start=1):
            print(
                json.dumps(
                    {"rank": rank, "item": item_id, "score": score, **recommender.describe_item(item_id)}, ensure_ascii=False, default=str
                )
            )
        return
    shown = list(recommender.catalog.item_attributes)[:3]
    table = Table("rank", "item", "score", *shown)
    for rank, (item_id, score) in enumerate(ranked, start=1):
        described = recommender.describe_item(item_id)
        table.add_row(str(rank), item_id, f"{score:.4f}", *[str(described.get(c, "")) for c in shown])
    out.print(table)


@app.command()
def explain(
    run_dir: Annotated[Path, typer.Argument(help="A classify, multilabel or entities run directory (or its model/ folder).")],
    text: Annotated[str, typer.Argument(help="The text to explain.")],
    label: Annotated[
        Optional[str], typer.Option(help="Explain this label instead of the predicted one(s); entities: only spans of this type.")
    ] = None,
    method: Annotated[
        str,
        typer.Option(help="auto (linear for tfidf, ig otherwise), ig (integrated gradients), lime (any classify model), linear (tfidf)."),
    ] = "auto",
    steps: Annotated[int, typer.Option(min=4, max=512, help="Integrated-gradients steps (more: slower, closer to exact).")] = 32,
    num_samples: Annotated[int, typer.Option(min=16, max=20000, help="LIME: perturbed texts to score (more: slower, steadier).")] = 500,
    seed: Annotated[int, typer.Option(min=0, max=2**32 - 1, help="LIME: seed of the perturbations.")] = 0,
    variant: Annotated[
        str, typer.Option(help="original (default: compressed variants have no gradients; --method lime explains them), or a variant name.")
    ] = "original",
    as_json: Annotated[bool, typer.Option("--json", help="Print the explanation as JSON.")] = False,
) -> None:
    """Which words pushed the model towards a label (each predicted label; each found entity): the text coloured by attribution."""
    from rich.text import Text

    from tuneforge.analysis.explain import explain as explain_text
    from tuneforge.predict.predictor import Predictor

    predictor = Predictor.load(run_dir, variant=variant)
    result = explain_text(predictor, text, label=label, method=method, steps=steps, num_samples=num_samples, seed=seed)
    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
        return
    parts = result.parts()
    if not parts:
        out.print(f"nothing to explain: no entity{f' of type {label}' if label else ''} found")
    for heading, words in parts:
        scale = max((abs(w.attribution) for w in words), default=0.0) or 1.0
        shown, cursor = Text(), 0
        for w in words:
            shown.append(result.text[cursor : w.start])
            strength = min(1.0, abs(w.attribution) / scale)
            colour = (
                f"rgb({int(255 * (1 - strength))},255,{int(255 * (1 - strength))})"
                if w.attribution > 0
                else f"rgb(255,{int(255 * (1 - strength))},{int(255 * (1 - strength))})"
            )
            shown.append(result.text[w.start : w.end], style=f"black on {colour}")
            cursor = w.end
        shown.append(result.text[cursor:])
        out.print(f"[bold]{heading}[/bold], {result.method.replace('_', ' ')}; green pushes towards it, red away")
        out.print(shown)
        table = Table("word", "attribution", title="strongest words")
        for w in sorted(words, key=lambda w: -abs(w.attribution))[:10]:
            table.add_row(w.text, f"{w.attribution:+.4f}")
        out.print(table)


@app.command()
def report(
    run_dirs: Annotated[list[Path], typer.Argument(help="One run, or several to compare side by side.", show_default=False)],
    output: Annotated[Optional[Path], typer.Option(help="Where to write (default RUN/report.html; needed for several runs).")] = None,
    open_it: Annotated[bool, typer.Option("--open", help="Open it in the default browser.")] = False,
    explained: Annotated[
        int, typer.Option(min=0, max=10, help="Most confident mistakes to explain (words highlighted); 0: none. Time-bounded.")
    ] = 5,
) -> None:
    """One self-contained HTML page (plots inline, works offline): metrics, data, slices, explained errors, cost, config, card."""
    from tuneforge.analysis.report import write_report

    if len(run_dirs) > 1 and output is None:
        raise UsageProblem("comparing runs: give --output FILE.html (each run keeps its own report.html)")
    path = write_report(run_dirs, output, explained=explained)
    if open_it:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())
    print(path)


@app.command()
def forget(
    run_dir: Annotated[Path, typer.Argument(help="The run whose model must not have seen the rows.")],
    rows: Annotated[Optional[str], typer.Option(help="A data file of the rows to forget (recommend: interactions), or one text.")] = None,
    users: Annotated[
        Optional[list[str]],
        typer.Option("--users", help="A user id, or a file of ids (one a line, or a table's --user-column); repeatable. Recommend runs."),
    ] = None,
    text_column: Annotated[str, typer.Option(help="Text column of --rows.")] = "text",
    user_column: Annotated[str, typer.Option(help="Id column of a --users table file (csv / jsonl / parquet).")] = "user",
) -> None:
    """Retrain a run's recipe (same config, seed and splits) without some rows or users; the old run is marked superseded."""
    from tuneforge.engine.forget import forget as forget_rows
    from tuneforge.lineage import read_query
    from tuneforge.rundir import RunDir

    if rows is None and not users:
        raise UsageProblem("name what to forget: --rows FILE_OR_TEXT and/or --users ID_OR_FILE")
    frame = read_query(RunDir.open(run_dir), rows, text_column=text_column) if rows is not None else None
    result, removed = forget_rows(run_dir, frame, users=user_ids(users, user_column) if users else None)
    err.print(f"removed {sum(removed.values())} row(s) ({', '.join(f'{k} {v}' for k, v in removed.items())}); {run_dir} is superseded")
    _print_result(result)


def user_ids(values: list[str], column: str) -> list[str]:
    """`--user`/`--users` values as ids: each is an id, or a file of ids (a table's `column`, or one id a line)."""
    from tuneforge.data.read import read_table

    ids: list[str] = []
    for value in values:
        path = Path(value)
        if not path.is_file():
            ids.append(value.strip())
        elif path.suffix.lower() in (".csv", ".tsv", ".jsonl", ".json", ".parquet"):
            frame, _ = read_table(path, text_column=column, label_column=None)
            ids.extend(_as_id(v) for v in frame["text"] if v is not None and str(v).strip())
        else:
            ids.extend(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    if not ids:
        raise UsageProblem(f"no user ids in {', '.join(values)}")
    return ids


def _as_id(value) -> str:
    """Ids as training reads them: 7, "7" and 7.0 are one id."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _pairs(values: list[str] | None, option: str, example: str) -> dict[str, str]:
    """`KEY=VALUE` options as a dict; a malformed one is a usage error naming the option."""
    out = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageProblem(f"{option} {item!r} must look like KEY=VALUE, e.g. {example}")
        out[key] = value
    return out


def runs_trained_on(found: list, source: str | None, text_column: str, users: list[str] | None) -> list:
    """The runs whose saved splits hold any of the rows of `source` or any row of `users`.

    Each run reads the query its own task's way (a text file, an interactions file); the problem
    column shows what it saw, per split. Runs whose rows name no users are not searched by user."""
    from tuneforge.errors import DataError, RunError
    from tuneforge.lineage import matches, read_query, user_matches
    from tuneforge.rundir import RunDir

    hits = []
    for summary in found:
        run, saw = RunDir(summary.path), []
        try:
            if source is not None:
                counts = matches(run, read_query(run, source, text_column=text_column))
                saw += [f"{v} {k}" for k, v in counts.items() if v]
            held = user_matches(run, users) if users else None
        except (RunError, DataError) as exc:
            err.print(f"{summary.path.name}: {exc}")
            continue
        if held and any(held.values()):
            saw.append(f"{max(held.values())} of the users")
        if saw:
            hits.append(dataclasses.replace(summary, problem="saw " + ", ".join(saw), metric=None))
    return hits
