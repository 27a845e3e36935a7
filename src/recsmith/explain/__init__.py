"""Explanations of a served list (``?explain=true``): where each item came from, what the ranker
made of it, which re-ranking step moved it, and the items behind its reason. Computed only when a
request asks; the serving path never pays for it."""
