"""Offline training and evaluation of the W2R2 grounding model (importable as ``w2r2_training``)."""
