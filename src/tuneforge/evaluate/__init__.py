"""Metrics, plots and error analysis for a trained model."""
