"""Exploration in serving: lists that are sometimes not the ranker's best, on purpose, with the
true probability of every shown item logged, so the engine learns about items it does not yet
rank high and the decision log can judge other policies off-line (``recsmith ope estimate``).

``config`` is the ``[explore]`` table; ``explorer`` the stage the pipeline runs after re-ranking;
``slots`` (epsilon and Thompson slots), ``plackett_luce`` (softmax rankings) and ``thompson``
compute draws and propensities; ``pools`` and ``eligible`` say what a slot may show; ``streams``
seeds each request from its id; ``arms`` and ``board`` keep the bandit counts in the store;
``linear`` is the contextual bandit (LinUCB, linear Thompson) over a few arms.
"""
