"""Per request: the list length and the bundle a placement asks for (no I/O: the releases are
loaded beforehand by ``sync.PlacementSync``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from recsmith.events.schema import Item
from recsmith.pipeline.config import PlacementConfig

if TYPE_CHECKING:
    from recsmith.serving.deps import Served

#: A request's list length when neither it nor its placement says.
DEFAULT_K = 10
#: What a list says when its placement's release could not be served (``degraded``).
LAPSE = "placement_release"


@dataclass(frozen=True, slots=True)
class PlacementReleases:
    """The releases placements name, loaded: ``bundles`` placement -> bundle; ``failed``
    placement -> why its release is not served. ``deployed``: the version they were bound for."""

    deployed: str | None = None
    bundles: dict[str, Any] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def with_catalog(self, items: Sequence[Item], stamp: int) -> PlacementReleases:
        """These releases with catalogue changes applied (each release once, however many
        placements it serves), as the catalogue sync applies them to the deployed one."""
        fresh: dict[int, Any] = {}
        for bundle in self.bundles.values():
            if id(bundle) not in fresh:
                fresh[id(bundle)] = bundle.with_catalog(items, stamp)
        moved = {name: fresh[id(bundle)] for name, bundle in self.bundles.items()}
        return replace(self, bundles=moved)


def placement_of(served: Any, placement: str | None) -> PlacementConfig | None:
    """``[placements.NAME]`` of the served pipeline (None: a single model, no placement, or
    one its file does not configure)."""
    config = getattr(served, "config", None)
    if not placement or config is None:
        return None
    found: PlacementConfig | None = config.placements.get(placement)
    return found


def list_length(asked: int | None, served: Any, placement: str | None) -> int:
    """The request's ``k``, else its placement's, else ``DEFAULT_K``."""
    if asked is not None:
        return asked
    own = placement_of(served, placement)
    return own.k if own is not None and own.k is not None else DEFAULT_K


def named_releases(served: Any) -> dict[str, str]:
    """Placement -> the release it names, for the placements of ``served`` that name one."""
    config = getattr(served, "config", None)
    if config is None:
        return {}
    return {n: p.release for n, p in config.placements.items() if p.release is not None}


def placement_bundle(
    releases: PlacementReleases | None, served: Served, placement: str | None
) -> tuple[Served, list[str]]:
    """The bundle that answers ``placement`` outside an experiment: its own release when it
    names one that is loaded, else ``served``; and ``[LAPSE]`` when it names one that is not
    (or was loaded for another deployed release, in the moment a deploy re-binds them)."""
    own = placement_of(served, placement)
    if own is None or own.release is None or own.release == served.version:
        return served, []
    held = releases.bundles.get(str(placement)) if releases is not None else None
    if held is None or releases is None or releases.deployed != served.version:
        return served, [LAPSE]
    return held, []
