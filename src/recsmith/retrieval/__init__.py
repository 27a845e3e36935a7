"""Candidate retrieval: several sources propose items, merged with quotas into one candidate set."""
