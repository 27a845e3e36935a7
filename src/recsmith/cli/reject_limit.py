"""``import --max-rejected N|P%``: how many refused records an import may have and still pass.

An import whose file was mostly refused (5 of 7 rows) exited 0, so a script or CI job loading
data went on as if it had worked. A limit makes that a failure (exit 3), either as a count
(``--max-rejected 0``: any refusal fails) or as a share of the records read (``5%``), which is
what one wants for files whose size varies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from recsmith.errors import ValidationError

OPTION = "--max-rejected"


@dataclass(frozen=True, slots=True)
class RejectLimit:
    """At most ``count`` refused records, or at most ``percent`` % of those read."""

    count: int | None = None
    percent: float | None = None

    @classmethod
    def parse(cls, text: str) -> RejectLimit:
        """``"10"`` -> at most 10 records; ``"2.5%"`` -> at most 2.5 % of them."""
        raw = text.strip()
        try:
            if raw.endswith("%"):
                percent = float(raw[:-1])
                if math.isfinite(percent) and 0 <= percent <= 100:
                    return cls(percent=percent)
            else:
                count = int(raw)
                if count >= 0:
                    return cls(count=count)
        except ValueError:
            pass
        raise ValidationError(
            OPTION, f"{text!r} is neither a count >= 0 (e.g. 10) nor a percentage (e.g. 5%)"
        )

    def exceeded(self, rejected: int, total: int) -> bool:
        """Whether ``rejected`` refusals among ``total`` records read are more than allowed."""
        if self.count is not None:
            return rejected > self.count
        return total > 0 and rejected * 100 > (self.percent or 0.0) * total

    def __str__(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else str(self.count)
