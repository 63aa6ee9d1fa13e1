"""Multi-label text classification: zero or more labels per text, per-label thresholds."""
