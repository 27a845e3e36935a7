"""One served list as the decision log keeps it.

A ``Decision`` is what off-policy evaluation, attribution and experiment reports need of a
request: who saw what, in which order, from which release and variant, and with which probability
the policy showed each item (``propensities``: 1.0 for a deterministic list). It is built on the
request path, so building it must stay cheap: tuples of what the response already holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

UnitKind = Literal["user", "session", "none"]
ROUTES = ("recommendations", "similar", "together", "trending", "popular", "batch")
#: Lists up to this long share one all-1.0 propensity tuple a length (``ones``).
_SHARED_ONES = 1024
_ONES: dict[int, tuple[float, ...]] = {}


def ones(n: int) -> tuple[float, ...]:
    """``(1.0,) * n``, a deterministic list's propensities: the same tuple object for every list
    of ``n`` items (``n`` up to ``_SHARED_ONES``), so the writer knows it by identity and packs
    its text once a length (``rows.pack``) instead of formatting ``n`` floats a list."""
    if n > _SHARED_ONES:
        return (1.0,) * n
    return _ONES.get(n) or _ONES.setdefault(n, (1.0,) * n)


@dataclass(slots=True, eq=True)
class Decision:
    """A list served: ``item_ids`` in shown order (position = index + 1), one score, source tuple
    and propensity per item. Never changed once built (its fields are tuples), but not a
    frozen dataclass: one is built per list served, on the event loop, and a frozen class's
    ``__init__`` sets each of the 19 fields through ``object.__setattr__``: 2.7 µs a decision
    against 0.24 µs (BENCHMARKS §111). Not hashable (nothing keys by a decision; the log keys
    its pending ones by ``recommendation_id``).

    ``latency_ms``: milliseconds from the request's arrival at the server's outermost timing
    layer (``serving.edge.Edge``, the start of the
    ``recsmith_request_duration_seconds`` span) to the response object built, list and ids
    included; serialising and sending it are not in it. Only the recommendations route (the one
    experiments split) times its lists; None elsewhere: other routes, the batch command, lists
    logged by older versions.

    ``assignment_propensity``: the probability that this list's request got its ``variant``
    (the variant's weight share under a fixed split; the allocation share the server drew it
    with under ``allocation = "thompson"``, ``experiments.adaptive``), so an experiment's
    variants can be compared off-policy; None outside experiments.

    ``arm``, ``arm_propensity``, ``arm_context``: a contextual bandit's choice of list
    (``exploration.linear_board``): the arm shown, its probability, and the context vector it
    was chosen for (what an attributed outcome updates that arm's model with); None without one."""

    recommendation_id: str
    served_at: datetime
    unit: str | None
    unit_kind: str
    route: str
    placement: str | None
    release: str
    experiment: str | None
    variant: str | None
    item_ids: tuple[str, ...]
    scores: tuple[float, ...]
    sources: tuple[tuple[str, ...], ...]
    propensities: tuple[float, ...]
    latency_ms: float | None = None
    assignment_propensity: float | None = None
    #: the caller's page view (``page_view_id``): lists of one page view never repeat an item
    #: (``recsmith.capping``); None outside page views
    page_view: str | None = None
    arm: str | None = None
    arm_propensity: float | None = None
    arm_context: tuple[float, ...] | None = None

    def position_of(self, item_id: str) -> int | None:
        """Where ``item_id`` was shown (1-based), None when it was not."""
        try:
            return self.item_ids.index(item_id) + 1
        except ValueError:
            return None


def decision(
    recommendation_id: str,
    *,
    unit: str | None,
    unit_kind: UnitKind,
    route: str,
    release: str,
    item_ids: Sequence[str],
    scores: Sequence[float],
    sources: Sequence[Sequence[str]],
    placement: str | None = None,
    experiment: str | None = None,
    variant: str | None = None,
    served_at: datetime | None = None,
    latency_ms: float | None = None,
    propensities: Sequence[float] | None = None,
    assignment_propensity: float | None = None,
    page_view: str | None = None,
    arm: str | None = None,
    arm_propensity: float | None = None,
    arm_context: Sequence[float] | None = None,
) -> Decision:
    """A list's decision, served now unless ``served_at``; ``propensities`` as an exploring
    pipeline drew them (None: a deterministic list, every propensity 1.0); scores and
    propensities are made floats here, the one type the writer packs fast (``rows.pack``: its
    encoder would write a ``Decimal`` as a string, where the standard one refuses it). Built
    once per list served, on the request path: the fields are passed in ``Decision``'s order,
    by position (~2 µs less than by name)."""
    return Decision(
        recommendation_id,
        served_at or datetime.now(UTC),
        unit,
        unit_kind,
        route,
        placement,
        release,
        experiment,
        variant,
        tuple(item_ids),
        tuple(map(float, scores)),
        tuple(map(tuple, sources)),
        ones(len(item_ids)) if propensities is None else tuple(map(float, propensities)),
        latency_ms,
        assignment_propensity,
        page_view,
        arm,
        arm_propensity,
        None if arm_context is None else tuple(float(x) for x in arm_context),
    )
