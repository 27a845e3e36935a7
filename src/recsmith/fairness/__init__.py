"""Fairness and bias controls for re-ranking: calibrated lists (``calibration``), exposure
floors and ceilings (``exposure``), a popularity penalty (``popularity``) and amortised exposure
from the decision log (``amortised``), combined into one selector by ``stage``; and what watches
them in production (``monitor``, ``report``). The offline measures live in
``recsmith.evaluation.fairness``."""

from recsmith.fairness.amortised import AmortisedExposure
from recsmith.fairness.exposure import ExposureRule
from recsmith.fairness.stage import Fairness, build_fairness

__all__ = ["AmortisedExposure", "ExposureRule", "Fairness", "build_fairness"]
