"""Loading a trained run and scoring texts and files with it."""
