"""``[explore]`` in ``pipeline.toml``: which exploration policy a pipeline serves with.

```toml
[explore]
policy = "thompson"     # "epsilon", "thompson" or "softmax"
epsilon = 0.2           # epsilon/thompson: probability that each slot explores
slots = [3]             # epsilon/thompson: 1-based positions that may explore
pool = "new_arrivals"   # what a slot explores: "new_arrivals", "long_tail" or "source"
new_days = 7            # new_arrivals: items created within this many days
reward = "click"        # thompson: attributed "click"s or "purchase"s are successes
temperature = 0.5       # softmax: 0 would be the deterministic list; larger shuffles more
```

A pipeline without the table serves deterministic lists exactly as before (propensity 1).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Policy = Literal["epsilon", "thompson", "softmax"]
PoolKind = Literal["new_arrivals", "long_tail", "source"]

#: Keys that only some policies read: naming one for another policy is a mistake, not a no-op.
_SLOT_KEYS = ("epsilon", "slots", "pool", "new_days", "max_events", "source", "max_pool")
_ONLY = {
    "epsilon": _SLOT_KEYS,
    "thompson": (*_SLOT_KEYS, "reward", "prior", "bank"),
    "softmax": ("temperature", "depth", "samples"),
}


class ExploreConfig(BaseModel):
    """See module docstring; every key is checked when the file is read."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    policy: Policy
    epsilon: float = Field(0.1, ge=0, le=1, description="probability that a slot explores")
    slots: list[int] = Field(
        default_factory=lambda: [3], min_length=1, description="1-based positions"
    )
    pool: PoolKind = "new_arrivals"
    new_days: float = Field(7.0, gt=0, description="new_arrivals: created within this many days")
    max_events: int = Field(
        5, ge=0, description="long_tail: items with at most this many training interactions"
    )
    source: str | None = Field(None, description="pool = 'source': the retrieval source's name")
    max_pool: int = Field(500, ge=1, le=20_000, description="newest/rarest pool items kept")
    reward: Literal["click", "purchase"] = "click"
    prior: list[float] = Field(
        default_factory=lambda: [1.0, 1.0],
        min_length=2,
        max_length=2,
        description="thompson: Beta(alpha, beta) before any data",
    )
    bank: int = Field(256, ge=16, le=4096, description="thompson: posterior draws banked")
    temperature: float = Field(0.5, gt=0, le=100)
    depth: int = Field(10, ge=0, le=1000, description="softmax: rows below k it may promote")
    samples: int = Field(256, ge=16, le=100_000, description="softmax: Monte-Carlo prefixes")

    @model_validator(mode="before")
    @classmethod
    def _keys_of_policy(cls, raw: object) -> object:
        if isinstance(raw, dict) and raw.get("policy") in _ONLY:
            allowed = {"policy", *_ONLY[raw["policy"]]}
            # a saved pipeline's manifest dumps every key with its default: only a value set
            # for another policy is the mistake
            fields = cls.model_fields
            known = sorted(
                k
                for k in set(raw) - allowed
                if k in fields and raw[k] != fields[k].get_default(call_default_factory=True)
            )
            if known:
                raise ValueError(f"{known[0]!r} is not read by policy {raw['policy']!r}")
        return raw

    @model_validator(mode="after")
    def _consistent(self) -> ExploreConfig:
        if len(set(self.slots)) != len(self.slots) or min(self.slots) < 1:
            raise ValueError("slots: distinct 1-based positions")
        if (self.pool == "source") != (self.source is not None):
            raise ValueError("pool = 'source' and source = NAME go together")
        if min(self.prior) <= 0:
            raise ValueError("prior: both Beta parameters must be > 0")
        return self

    @property
    def slot_index(self) -> tuple[int, ...]:
        """0-based slots, in order."""
        return tuple(sorted(s - 1 for s in self.slots))
