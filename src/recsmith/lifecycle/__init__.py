"""Retraining a release with a quality gate, and what decides whether it ships (issue #17)."""
