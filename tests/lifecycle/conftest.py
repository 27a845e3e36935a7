"""Fixtures of the lifecycle tests: the simulated events of ``grown_shop``."""

from __future__ import annotations

import pandas as pd
import pytest
from grown_shop import simulated_events


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return simulated_events()
