"""Exposure settings checked against the training catalogue before anything is fitted.

A floor for a group no available item belongs to ("provider_size = small" where the catalogue
says "Small", or a property the catalogue lacks) would train cleanly and then report every list as
short of it; a calibration property no item carries would calibrate nothing. Both are
configuration mistakes, named here with their key, as ``pipeline.rule_check`` names rules.
"""

from __future__ import annotations

import numpy as np

from recsmith.errors import ValidationError
from recsmith.fairness.exposure import ExposureRule
from recsmith.rerank.catalog_view import ItemTable


def check_fairness(
    exposure: list[ExposureRule], calibration: float, calibration_property: str, table: ItemTable
) -> None:
    """ValidationError for a floor no available item can fill, or a calibration property that
    no catalogue item has."""
    every = np.arange(table.n_items)
    for n, rule in enumerate(exposure):
        if rule.at_least and not (table.available & rule.matches(table, every)).any():
            raise ValidationError(
                f"pipeline rerank.exposure.{n}",
                f"no available item of the catalogue is in this group ({rule.label}), so the "
                "floor could never be met (check the values' spelling and case, and that the "
                "catalogue was given with --items)",
            )
    if (
        calibration
        and calibration_property != "category"
        and calibration_property not in table.property_names()
    ):
        raise ValidationError(
            "pipeline rerank.calibration_property",
            f"no catalogue item has the property {calibration_property!r}: nothing to calibrate",
        )
