"""`tuneforge pretrain`: domain pre-training (task lm) through the same engine as `train`.

`tuneforge pretrain CONFIG` is `tuneforge train CONFIG` with the task set to lm
when the config does not name one; `tuneforge train` runs an lm config as well.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tuneforge.cli_common import SetOption, UsageProblem, _print_result, app


@app.command()
def pretrain(
    config: Annotated[Optional[Path], typer.Argument(help="YAML run config with a pretrain section.", show_default=False)] = None,
    overrides: SetOption = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue an interrupted run directory.")] = None,
) -> None:
    """Pre-train on raw domain text: masked LM of an encoder (then `train` with model.name: RUN_DIR) or causal LM of a
    generator (the chat bot's); prints held-out loss and perplexity before and after, and the run directory last."""
    from tuneforge.engine.run import train as run_training

    if resume is not None:
        if config is not None or overrides:
            raise UsageProblem("--resume takes the run's saved config; do not pass CONFIG or --set with it")
        _print_result(run_training(None, resume=resume))  # type: ignore[arg-type]
        return
    if config is None:
        raise UsageProblem("give a CONFIG file, or --resume RUN_DIR")
    _print_result(run_training(pretrain_config(config, overrides or [])))


def pretrain_config(path: Path, overrides: list[str]):
    """The config at `path` as task lm: set when it names no task, a usage error when it names another."""
    from tuneforge.config import load_config

    config = load_config(path, overrides)
    if "task" not in config.model_fields_set:
        return load_config(path, [*overrides, "task=lm"])
    from tuneforge.tasks import get_task

    if getattr(get_task(config.task), "training_loop", None) != "language-model":
        raise UsageProblem(f"{path} is a task {config.task} config; `tuneforge pretrain` runs task lm (use `tuneforge train` for it)")
    return config
