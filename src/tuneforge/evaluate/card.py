"""model_card.md: what the model is, what it was trained on, how well it does, where it fails."""

from __future__ import annotations

from pathlib import Path

from tuneforge.runs import atomic_write_text


def write_model_card(run_dir: Path, *, config: dict, data_report: dict, metrics: dict, cost: dict, train_info: dict) -> Path:
    split = metrics.get("split", "test")
    per_class = metrics.get("per_class", {})
    rows = "\n".join(
        f"| {label} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |" for label, v in per_class.items()
    )
    splits = data_report.get("splits", {})
    split_lines = "\n".join(f"- {name}: {s['rows']} rows ({s['origin']})" for name, s in splits.items())
    removed = data_report.get("files", {}).get("train", {}).get("removed", {})
    weakest = min(per_class.items(), key=lambda kv: kv[1]["f1"])[0] if per_class else "n/a"
    text = f"""# Model card: {run_dir.name}

## Model
- Task: text classification ({len(data_report.get("labels", []))} labels: {", ".join(data_report.get("labels", []))})
- Method: `{config["train"]["method"]}` on base model `{config["model"]["name"]}`
- Max input length: {config["train"]["max_length"]} tokens (longer texts are truncated)

## Data
- Source: `{config["data"]["train"]}`
{split_lines}
- Removed while cleaning the training file: {removed}

## Results on {split} (n={metrics.get("n")})
- Accuracy: {metrics.get("accuracy", float("nan")):.4f}
- Macro F1: {metrics.get("macro_f1", float("nan")):.4f}; micro F1: {metrics.get("micro_f1", float("nan")):.4f}
- Expected calibration error: {metrics.get("expected_calibration_error", float("nan")):.4f}

| label | precision | recall | F1 | support |
|---|---|---|---|---|
{rows}

## Cost
- Wall time {cost.get("wall_seconds")} s, CPU time {cost.get("cpu_seconds")} s, peak memory {cost.get("peak_rss_mb")} MB on {cost.get("device")}; estimated ${cost.get("estimated_cost_usd")}

## Intended use and limitations
- Intended for texts like the training data; scores on other domains, languages or lengths are unknown.
- Weakest label on {split}: `{weakest}`. Look at `eval/errors.csv` (most confident mistakes) before relying on it.
- Probabilities are softmax scores; see `eval/reliability.png` before treating them as calibrated.
- Training details: {train_info}
"""
    return atomic_write_text(run_dir / "model_card.md", text)
