"""How long a gathered call may wait for company: dynamic batching under load, none when idle.

A lone query on a busy server is answered by a call of its own, and that call's fixed cost (a
pipeline call's set-up: sparse matrices, one LightGBM call, re-ranking set-up) is paid again for
the query that arrives a millisecond later. Under an open loop the server's cores are mostly busy
with such fixed costs (BENCHMARKS §135: 0.68–0.83 ms of server CPU per request against 0.50–0.61
in a closed loop, where requests arrive together). Holding the call a short, bounded while lets
the next queries join it, as Triton's dynamic batcher does with its ``max_queue_delay``; the hold
here follows what this process measures rather than a constant:

- the arrival rate, as the mean gap between submissions (an exponentially weighted mean; one long
  silence pulls it far up, so a server gone quiet answers its next request at once);
- what a call costs, fitted to the calls' own CPU time as ``fixed + per_query × n`` (a weighted
  least-squares fit, recent calls weighing most).

From the fit, ``target`` is the group size at which the fixed cost shared per query falls to the
per-query cost (``fixed / per_query``): below it, every query that joins saves more than it
costs; beyond it, the most a further wait could save is half. The hold is the time ``target``
queries take to arrive at the measured rate, never longer than ``max_wait``, and a group that
reaches ``target`` is called at once. No hold when fewer than one more query is expected within
``max_wait``, when the fit says batching saves nothing (``target`` below 2), or when the latest
take (every group of every key) already found as many queries waiting as a hold would gather
(``target``, or the 1 + ``max_wait`` / gap expected within the bound, whichever is fewer): then
queries pile up while the calls run and the next group gathers on its own (BENCHMARKS §136).

The gap alone cannot tell a hold that gathers from one that cannot: a closed loop with fewer
clients than ``target`` sends its queries in bursts right after each answer, so its mean gap is
short, yet while its group is held nobody is left to send (the loop sits idle), and queries split
over many keys never share a call whatever the rate. So each hold is judged by what it gained:
the queries that joined after the moment an unheld flush would have taken the group
(``held``). While the recent holds gain less than ``MIN_GAIN`` queries each, holding stops for
a number of groups that doubles with each hold-less stretch that ends in holds that gain nothing
again (``FIRST_BACKOFF`` to ``LONGEST_BACKOFF`` groups), then one hold tries again: a server
whose holds cannot gather (a saturated or closed loop, one request at a time) holds about one
group in a thousand, one whose load changed finds out within ``LONGEST_BACKOFF`` groups.
Until the calls have been seen at more than one size, batching is taken to pay (the premise of
coalescing) and the hold is ``max_wait``'s bound.

The fit counts a call's CPU on the event loop's thread (``time.thread_time``): CPU that a call
hands to other threads (BLAS or LightGBM workers) or time it waits on I/O is not in it, so the
fixed cost, and with it ``target``, can come out low; a low target holds less, never longer.
"""

from __future__ import annotations

import math

#: weight of the newest gap in the mean gap: 1/8 follows a change of load within tens of arrivals
GAP_WEIGHT = 1 / 8
#: a gap counts at most this long: one silence of a second (or an hour) puts the mean gap above
#: 125 ms, far past any hold, and a few dozen arrivals close together bring it back
LONGEST_GAP_S = 1.0
#: how much the cost fit's sums keep of a call per newer call: the fit follows ~64 recent calls
COST_MEMORY = 1 - 1 / 64
#: below this spread of recent group sizes (a weighted variance) the fit has no slope to speak of
MIN_SIZE_VARIANCE = 0.05
#: weight of the newest hold's gain in the mean gain: a few holds that gather nothing stop holding
GAIN_WEIGHT = 1 / 4
#: a hold must bring at least this many queries on average (per hold) to go on holding
MIN_GAIN = 0.5
#: the mean gain a retry starts from: one hold that gains nothing (0.45) stops holding again
RETRY_GAIN = 0.6
#: groups left unheld after holds stopped paying, doubling up to the longest while they still don't
FIRST_BACKOFF = 32
LONGEST_BACKOFF = 1024


class CallCost:
    """A call's CPU time fitted as ``fixed + per_query × n`` over recent calls (decayed sums of a
    least-squares fit: O(1) per call, no history kept)."""

    def __init__(self) -> None:
        self._w = self._n = self._nn = self._t = self._nt = 0.0

    def add(self, n: int, seconds: float) -> None:
        """One call of ``n`` queries took ``seconds`` of CPU."""
        keep = COST_MEMORY
        self._w = self._w * keep + 1.0
        self._n = self._n * keep + n
        self._nn = self._nn * keep + n * n
        self._t = self._t * keep + seconds
        self._nt = self._nt * keep + n * seconds

    def fit(self) -> tuple[float, float] | None:
        """``(fixed, per_query)`` seconds, or None while recent calls were all of about one size
        (no slope to fit)."""
        if self._w == 0.0:
            return None
        mean_n = self._n / self._w
        variance = self._nn / self._w - mean_n * mean_n
        if variance < MIN_SIZE_VARIANCE:
            return None
        per_query = (self._nt / self._w - mean_n * self._t / self._w) / variance
        return self._t / self._w - per_query * mean_n, per_query


class WaitPolicy:
    """See module docstring: ``arrived`` at each submission, ``taken`` at each take, ``called``
    after each call, ``held`` after each held take, and ``plan`` when a group's first query asks
    how long its call may wait."""

    def __init__(self, max_wait_s: float, max_batch: int) -> None:
        if not 0 < max_wait_s < math.inf:
            raise ValueError(f"max_wait_s must be positive and finite, got {max_wait_s}")
        self.max_wait_s = max_wait_s
        self._max_batch = max_batch
        self._gap = LONGEST_GAP_S  # a server that just started is taken to be idle
        self._last: float | None = None
        self._last_take = 0  # the queries the latest take found waiting, all keys
        self._gain = 1.0  # mean queries a hold gained (a hold is taken to pay until seen not to)
        self._skip = 0  # groups still to go unheld, holds having gained nothing
        self._backoff = FIRST_BACKOFF  # the next such stretch
        self.cost = CallCost()

    @property
    def mean_gap_s(self) -> float:
        """The mean gap between submissions, as measured so far."""
        return self._gap

    def arrived(self, now: float) -> None:
        """A query was submitted at ``now`` (``time.monotonic``)."""
        if self._last is not None:
            gap = min(max(now - self._last, 0.0), LONGEST_GAP_S)
            self._gap += GAP_WEIGHT * (gap - self._gap)
        self._last = now

    def called(self, n: int, cpu_s: float) -> None:
        """A call of ``n`` queries took ``cpu_s`` seconds of CPU."""
        self.cost.add(n, cpu_s)

    def taken(self, n: int) -> None:
        """A take found ``n`` queries waiting (all keys)."""
        self._last_take = n

    def held(self, gained: int) -> None:
        """A held take found ``gained`` queries more than an unheld flush would have."""
        if gained > 0:
            self._backoff = FIRST_BACKOFF
        self._gain += GAIN_WEIGHT * (gained - self._gain)
        if self._gain < MIN_GAIN:  # holds gather nothing: stop for a while, then try afresh
            self._skip, self._backoff = self._backoff, min(2 * self._backoff, LONGEST_BACKOFF)
            self._gain = RETRY_GAIN

    def target(self) -> int:
        """The group size worth waiting for (module docstring), 1 to ``max_batch``."""
        fit = self.cost.fit()
        if fit is None:
            return self._max_batch
        fixed, per_query = fit
        if fixed <= 0.0:
            return 1
        if per_query <= fixed / self._max_batch:
            return self._max_batch
        return max(1, min(self._max_batch, math.floor(fixed / per_query)))

    def plan(self) -> tuple[float, int]:
        """``(wait_s, target)`` for a group whose first query was just submitted: wait at most
        ``wait_s`` (0: call at once) unless ``target`` queries are waiting sooner."""
        gap, bound = self._gap, self.max_wait_s
        if gap > bound:  # not even one more query expected within the bound: call at once
            return 0.0, 1
        target = self.target()
        gathers = min(target, 1 + bound / gap) if gap > 0 else target
        if target < 2 or self._last_take >= gathers:
            return 0.0, 1
        if self._skip > 0:  # recent holds gathered nothing
            self._skip -= 1
            return 0.0, 1
        return min(bound, (target - 1) * gap), target
