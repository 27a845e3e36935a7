"""The contextual bandit's sums as rows of the stores' ``bandit_linear`` table.

Each arm's Σ x xᵀ (cells ``0 … d²−1``, row-major) and Σ r x (cells ``d² … d²+d−1``) are stored
cell by cell and *added* to by an UPSERT, as ``arm_rows`` adds counts: every worker and replica
adds what it saw without reading first, and the table is the state that survives a restart.
``model`` keys one bandit (its arms and context width), so a changed configuration learns afresh
instead of reading sums of another shape.
"""

from __future__ import annotations

UPSERT_CELLS_SQL = (
    "INSERT INTO bandit_linear (model, arm, cell, value) VALUES ({p}, {p}, {p}, {p}) "
    "ON CONFLICT (model, arm, cell) DO UPDATE SET value = bandit_linear.value + excluded.value"
)
SELECT_CELLS_SQL = "SELECT arm, cell, value FROM bandit_linear WHERE model = {p}"
