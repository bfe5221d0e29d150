"""Symile objective, encoders, training loop and evaluation (docs/train.md)."""
