"""Report validation scores to the Optuna trial during training; stop the run when it is pruned."""

from __future__ import annotations

from transformers import TrainerCallback

from tuneforge.errors import RunStopped


def _pruned_error():
    import optuna

    class TrialPrunedRun(RunStopped, optuna.TrialPruned):
        """Optuna's own prune signal, and a stopped run whose run.json says "pruned" instead of "failed"."""

        status = "pruned"

    return TrialPrunedRun


class PruningCallback(TrainerCallback):
    def __init__(self, trial, metric: str):
        self.trial, self.metric = trial, metric

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        value = (metrics or {}).get(f"eval_{self.metric}")
        if value is None or state.global_step == 0:  # step 0 scores the warm start, the same for every trial
            return control
        self.trial.report(float(value), step=state.global_step)
        if self.trial.should_prune():
            raise _pruned_error()(f"pruned at step {state.global_step} ({self.metric}={value:.4f})")
        return control
