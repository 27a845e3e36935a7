"""Recommendation models behind one interface (``base.Recommender``), created by name
(``registry``)."""
