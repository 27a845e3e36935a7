"""Off-policy evaluation: estimate what a target policy would have earned from a log of another
(logging) policy's actions, rewards and propensities, without serving it to anyone.

``inputs`` reads and checks the two files, ``reward_model`` fits the cross-fitted reward model
DM and DR need, ``estimators`` holds the definitions, ``bootstrap`` the intervals and
``evaluate`` ties them together (README: Off-policy evaluation)."""

from recsmith.ope.estimators import ESTIMATORS
from recsmith.ope.evaluate import OpeReport, estimate

__all__ = ["ESTIMATORS", "OpeReport", "estimate"]
