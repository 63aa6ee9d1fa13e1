"""The floor of a fine-tune: plain baselines, fitted on the same splits, that it must beat on validation to be kept.

`train.floor` names them: the frozen-encoder probe (the `head` method's
solution, which LP-FT also starts from) and the TF-IDF baseline (seconds to
fit). Every `full` / `lora` run records their validation scores beside its own;
with `train.keep: best` a baseline that beats the fine-tuned model on
validation becomes the run's model, saved as that method's model folder, and
the run says why. A tie keeps the fine-tune the user asked for; between two
baselines the probe wins a tie (it is the closer to what was asked).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tuneforge.engine.context import TrainContext
from tuneforge.engine.linear import fit_tfidf, save_tfidf
from tuneforge.engine.probe import Probe, save_probe
from tuneforge.sections import FLOOR_TITLES


@dataclass
class Floor:
    name: str  # a `train.floor` entry: probe | tfidf
    score: float  # validation `train.metric`
    save: Callable[[Path], dict]  # writes the baseline's model folder; returns what it adds to the train info

    @property
    def title(self) -> str:
        return FLOOR_TITLES[self.name]


def fit_floors(ctx: TrainContext, probe: Probe | None) -> list[Floor]:
    """The baselines of `train.floor` the task has a method for (the probe comes fitted: the warm start needs it too)."""
    t, task = ctx.config.train, ctx.task
    floors = []
    if probe is not None:

        def save_the_probe(out_dir: Path) -> dict:
            save_probe(probe, ctx, out_dir, extra={"kept_over": t.method})
            return probe.fit.extra

        floors.append(Floor("probe", probe.score(t.metric), save_the_probe))
    if "tfidf" in t.baselines_fitted(task.methods):
        tfidf = fit_tfidf(ctx)
        floors.append(Floor("tfidf", tfidf.score(t.metric), lambda out_dir: save_tfidf(tfidf, ctx, out_dir, extra={"kept_over": t.method})))
    return floors


def _best_above(floors: list[Floor], fine_tuned: float | None) -> Floor | None:
    above = [f for f in floors if fine_tuned is not None and f.score > fine_tuned]
    return max(above, key=lambda f: f.score, default=None)  # max keeps the first of equals: the probe


def floor_to_keep(floors: list[Floor], fine_tuned: float | None, train) -> Floor | None:
    """The baseline kept instead of the fine-tune: with `keep: best`, the best `train.floor` one strictly above it."""
    if train.keep != "best":
        return None
    return _best_above([f for f in floors if f.name in train.floor], fine_tuned)


def kept_reason(floor: Floor, fine_tuned: float, metric: str) -> str:
    return (
        f"the fine-tuned model's best validation {metric} ({fine_tuned:.4f}) is below the {floor.title}'s "
        f"({floor.score:.4f}); train.keep=best keeps the {floor.title}"
    )


def kept_anyway_note(floors: list[Floor], fine_tuned: float | None, train, metric: str) -> str | None:
    """When the fine-tune is kept although a baseline scored higher on validation: which, and why it was kept."""
    best = _best_above(floors, fine_tuned)
    if best is None:
        return None
    why = "train.keep is fine-tuned" if train.keep != "best" else f"{best.name} is not in train.floor"
    return f"the {best.title} scored higher on validation {metric} ({best.score:.4f} vs {fine_tuned:.4f}); the fine-tune was kept because {why}"
