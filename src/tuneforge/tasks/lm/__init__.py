"""`task: lm` — domain pre-training: masked-LM of an encoder (`train` then starts from it) or causal LM of a generator."""
