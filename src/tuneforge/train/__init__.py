"""Training methods, checkpoints and cost accounting behind one `train(config)` entry point."""
