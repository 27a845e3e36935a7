"""Ranking: a learning-to-rank model re-scores retrieved candidates with rich features."""
