"""The one training engine: every task and method trains through here (Hugging Face Trainer for transformers)."""
