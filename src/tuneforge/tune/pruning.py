"""Report validation scores to the Optuna trial during training; stop the run when it is pruned."""

from __future__ import annotations

from transformers import TrainerCallback


class PruningCallback(TrainerCallback):
    def __init__(self, trial, metric: str):
        self.trial, self.metric = trial, metric

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        value = (metrics or {}).get(f"eval_{self.metric}")
        if value is None:
            return control
        self.trial.report(float(value), step=state.global_step)
        if self.trial.should_prune():
            import optuna

            exc = optuna.TrialPruned(f"pruned at step {state.global_step} ({self.metric}={value:.4f})")
            exc.run_status = "pruned"  # recorded in run.json instead of "failed"
            raise exc
        return control
