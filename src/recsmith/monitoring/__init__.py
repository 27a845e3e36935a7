"""Drift and freshness of the served release against the traffic it now sees (issue #17)."""
