"""Evaluation artefacts shared by every task: plots, the model card, evaluation on demand."""
