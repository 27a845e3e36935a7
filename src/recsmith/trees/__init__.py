"""Compiled evaluation of tree ensembles (LightGBM models) for the ranker's hot path."""
