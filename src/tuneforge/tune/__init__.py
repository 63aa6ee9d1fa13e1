"""Hyper-parameter search with Optuna: the space in the config, each trial a normal run."""
