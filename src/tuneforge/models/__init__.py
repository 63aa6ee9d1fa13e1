"""Model registry and task heads."""
