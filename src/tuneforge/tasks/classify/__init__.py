"""Single-label text classification."""
