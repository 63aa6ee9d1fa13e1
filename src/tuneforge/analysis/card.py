"""model_card.md: what the model is, what it was trained on, how well it does, where it fails."""

from __future__ import annotations

from pathlib import Path

from tuneforge.rundir import RunDir
from tuneforge.sections import FLOOR_TITLES


def write_model_card(run: RunDir, *, config: dict, task, data_report: dict, metrics: dict, cost: dict, train_info: dict) -> Path:
    splits = data_report.get("splits", {})
    split_lines = "\n".join(f"- {name}: {s['rows']} rows ({s['origin']})" for name, s in splits.items())
    removed = data_report.get("files", {}).get("train", {}).get("removed", {})
    text = f"""# Model card: {run.name}

## Model
{task.card_model(config, data_report, train_info)}

## Data
- Source: `{config["data"]["train"]}`
{split_lines}
- Removed while cleaning the training file: {removed}{_augmentation_line(data_report)}

{_training_section(train_info)}
{task.card_results(metrics)}
## Cost
- Wall time {cost.get("wall_seconds")} s, CPU time {cost.get("cpu_seconds")} s, peak memory {cost.get("peak_rss_mb")} MB on {cost.get("device")}; estimated ${cost.get("estimated_cost_usd")}

## Intended use
- Intended for data like the training data; scores on other domains, languages, lengths or populations are unknown.
- Training details: {train_info}
"""
    return run.write_model_card(text)


def _augmentation_line(data_report: dict) -> str:
    aug = data_report.get("augmentation")
    if not aug:
        return ""
    near = f", neighbours from `{aug['neighbours_from']}`" if aug.get("neighbours_from") else ""
    return (
        f"\n- Training split augmented (`data.augment`): {aug['rows_added']} word-edited copies added to {aug['train_rows']} rows "
        f"({', '.join(f'{k} {v}' for k, v in aug['rows_added_by_operation'].items())}; {aug['probability']:.0%} of words, "
        f"seed {aug['seed']}{near}); validation and test untouched"
    )


def training_lines(info: dict) -> list[str]:
    """How a fine-tune went, in sentences: where it stopped and why, and how it stands against its baselines (its floor)."""
    lines = []
    auto = info.get("auto")
    if auto:
        lines.append(f"Method chosen by train.method=auto for a budget of {auto['budget_seconds']:.0f} s: {auto['why']}")
        if auto.get("stopped_for_budget_at_step") is not None:
            lines.append(
                f"Training was stopped at step {auto['stopped_for_budget_at_step']} to finish within the budget (best checkpoint kept)"
            )
    if "stop_reason" in info:
        lines.append(
            f"Stopped at epoch {info['stopped_epoch']} of {info['planned_epochs']}: {info['stop_reason']}; best epoch {info.get('best_epoch')}"
        )
    privacy = info.get("privacy")
    if privacy:
        lines.append(
            f"Differentially private (DP-SGD, Opacus): ε spent {privacy['epsilon_spent']} of {privacy['epsilon_requested']} requested, "
            f"δ={privacy['delta']:.2g}, noise multiplier {privacy['noise_multiplier']}, gradients clipped at {privacy['max_grad_norm']}"
            + (f"; {privacy['steps']} steps at sampling rate {privacy['sample_rate']:g}" if "steps" in privacy else "")
            + (f". Warning: {privacy['warning']}" if privacy.get("warning") else "")
        )
    speed = info.get("throughput") or {}
    if speed.get("padding_share") is not None:
        lines.append(
            f"Training: {speed['train_texts_per_second']} texts/s, {speed['train_tokens_per_second']} tokens/s; "
            f"{speed['padding_share']:.0%} of computed positions were padding"
            + (f"; {info['precision']} arithmetic" if info.get("precision") else "")
            + ("; compiled with torch.compile (train.compile)" if info.get("compile") else "")
        )
    lines.extend(_floor_lines(info))
    return lines


def _floor_lines(info: dict) -> list[str]:
    """The fine-tune against its floor (engine/floor.py): each baseline's validation score, and which model was kept."""
    scores = {
        name: (key.removeprefix(f"{name}_validation_"), info[key])
        for name in FLOOR_TITLES
        for key in info
        if key.startswith(f"{name}_validation_")
    }
    if not scores:
        return []
    metric = next(iter(scores.values()))[0]
    lines = [
        f"Baselines on validation ({metric}): "
        + ", ".join(f"{FLOOR_TITLES[name]} {value:.4f}" for name, (_, value) in scores.items())
        + f"; warm start: {info.get('warm_start')}"
    ]
    if info.get("kept") in FLOOR_TITLES:
        lines.append(
            f"The run kept the {FLOOR_TITLES[info['kept']]}, not the fine-tuned model: {info['kept_reason']} "
            "(train.keep: fine-tuned keeps the fine-tune)"
        )
    else:
        lines.append(f"Fine-tuned model on validation: {metric} {info.get(f'best_validation_{metric}', float('nan')):.4f} (kept)")
        if info.get("kept_note"):
            lines.append(f"Note: {info['kept_note']}")
    return lines


def _training_section(info: dict) -> str:
    lines = training_lines(info)
    return ("## Training\n" + "\n".join(f"- {line}" for line in lines) + "\n") if lines else ""
