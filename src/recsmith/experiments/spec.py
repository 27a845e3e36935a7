"""What an experiment is: a name, the unit it splits, its variants with weights, its salt.

Plain frozen data, serialisable to the JSON the registry stores (``registry.py``) and parsed back
with every field checked, so a hand-edited or half-understood file is refused with its reason
rather than served.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from recsmith.errors import ValidationError

Unit = Literal["user", "session"]
Allocation = Literal["fixed", "thompson"]
#: What an adaptive allocation maximises: attributed clicks or purchases per impression.
KPIS = ("ctr", "conversion")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Variant:
    """One arm: ``target`` is a release version in the registry or a model/pipeline directory."""

    name: str
    target: str
    weight: float


@dataclass(frozen=True, slots=True)
class Experiment:
    """A running or stopped experiment. The first variant is the control. ``salt`` is drawn at
    start, so restarting an experiment under the same name reshuffles its units and two
    experiments never share an assignment."""

    name: str
    variants: tuple[Variant, ...]
    salt: str
    unit: Unit = "user"
    placement: str | None = None
    started_at: str = ""
    stopped_at: str | None = None
    canary: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    #: "fixed": the weights, sticky per unit by hash; "thompson": shares learned from ``kpi``
    #: and drawn per request (``experiments.adaptive``), each at least ``min_share``, the
    #: weights until every variant has ``burn_in`` impressions
    allocation: Allocation = "fixed"
    kpi: str = "ctr"
    min_share: float = 0.05
    burn_in: int = 500

    def __post_init__(self) -> None:
        check_name(self.name, "name")
        if len(self.variants) < 2:
            raise ValidationError("--variant", "an experiment needs a control and a treatment")
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValidationError("--variant", f"variant names repeat: {', '.join(names)}")
        for v in self.variants:
            check_name(v.name, "--variant")
            if not (math.isfinite(v.weight) and v.weight > 0):
                raise ValidationError("--variant", f"{v.name}: weight must be a positive number")
        if self.unit not in ("user", "session"):
            raise ValidationError("--unit", f"must be user or session, not {self.unit!r}")
        self._check_allocation()

    def _check_allocation(self) -> None:
        if self.allocation not in ("fixed", "thompson"):
            raise ValidationError(
                "--allocation", f"must be fixed or thompson, not {self.allocation!r}"
            )
        if self.kpi not in KPIS:
            raise ValidationError("--kpi", f"must be one of {', '.join(KPIS)}, not {self.kpi!r}")
        most = 1.0 / len(self.variants)
        if not (math.isfinite(self.min_share) and 0 <= self.min_share < most):
            raise ValidationError(
                "--min-share",
                f"{self.min_share!r}: must be at least 0 and below 1/{len(self.variants)} "
                "(each variant's floor, or the shares could not learn anything)",
            )
        if self.burn_in < 0:
            raise ValidationError("--burn-in", f"{self.burn_in}: must be 0 or more impressions")

    @property
    def adaptive(self) -> bool:
        """Whether traffic follows learned shares (per request) rather than fixed weights."""
        return self.allocation != "fixed"

    @property
    def control(self) -> str:
        return self.variants[0].name

    @property
    def running(self) -> bool:
        return self.stopped_at is None

    @property
    def weights(self) -> dict[str, float]:
        """Each variant's share of the units (the weights normalised to sum to 1)."""
        total = sum(v.weight for v in self.variants)
        return {v.name: v.weight / total for v in self.variants}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Experiment:
        try:
            variants = tuple(
                Variant(str(v["name"]), str(v["target"]), float(v["weight"]))
                for v in data["variants"]
            )
            return cls(
                name=str(data["name"]),
                variants=variants,
                salt=str(data["salt"]),
                unit=data.get("unit", "user"),
                placement=data.get("placement"),
                started_at=str(data.get("started_at", "")),
                stopped_at=data.get("stopped_at"),
                canary=bool(data.get("canary", False)),
                extra=dict(data.get("extra", {})),
                allocation=data.get("allocation", "fixed"),
                kpi=str(data.get("kpi", "ctr")),
                min_share=float(data.get("min_share", 0.05)),
                burn_in=int(data.get("burn_in", 500)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ValidationError):
                raise
            raise ValidationError("experiments", f"malformed experiment record: {exc}") from None


def check_name(name: str, field_name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValidationError(
            field_name, f"{name!r}: 1-64 letters, digits, '.', '_' or '-', starting alphanumeric"
        )
    return name


def parse_variant(text: str) -> tuple[str, str, float | None]:
    """``NAME=TARGET[:WEIGHT]`` → (name, target, weight or None). A target may itself hold ':'
    (a path), so only a trailing ``:number`` counts as the weight."""
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise ValidationError("--variant", f"{text!r}: expected NAME=DIR_OR_RELEASE[:WEIGHT]")
    target, colon, weight = rest.rpartition(":")
    if colon:
        try:
            return name, target, float(weight)
        except ValueError:
            pass  # a ':' inside the target, no weight
    return name, rest, None
