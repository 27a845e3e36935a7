"""recsmith: a self-hostable recommendation engine."""

__version__ = "0.1.0"
