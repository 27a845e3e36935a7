"""Choosing between configurations scored on several validation protocols at once.

Each protocol has its own scale (NDCG@10 after a time cut is several times that of each user's
latest item), so a configuration is read as its *share* of the best single source on each
protocol, and judged by its worst share: the maximin choice, the one furthest from failing on
whichever protocol the data will be judged by. On one protocol this is the plain mean against
the best single source. A richer choice replaces a simpler one only if it lifts the simpler one's
weakest protocol by more than noise (a paired bootstrap interval over that protocol's users above
zero) and its own worst share is not lower, or if it is better beyond noise on a protocol that
counts and worse beyond noise on none: the simpler choice's weakest protocol is where its
guarantee is thinnest, and a noisy protocol where both do about as well (a time cut holds ~100
users) must not veto a gain measured beyond noise on the other.

A protocol counts in the maximin only where it tells the single sources apart (``deciding``):
its best single source beats popularity beyond noise (or popularity, where it is the best, beats
the runner-up). Pooled time cuts on a sparse set hold ~100 users at NDCG ~0.02 (ml-100k@0.1,
BENCHMARKS §42): their shares are noise, and a maximin that reads them as signal ships popularity
over a source that wins the other protocol. A protocol that does not decide still counts
against what falls below popularity there beyond noise (its share there is its mean over
popularity's: a collapse the other protocol cannot see is still weighed), and has no say
otherwise — except where the latest items continue sittings (below), where it bars what falls
below popularity's mean there on its point estimate. Popularity alone is always a candidate,
so the best single source's worst share is never below its. Where no protocol decides, all
count as before (§35), each against its best mean.

Where some protocol decides, a source other than popularity is a candidate for the best single
source only if it beats popularity as a richer choice beats a simpler one, or scores above it on
every protocol (``best_single``):
worst shares weigh a share of the best on one protocol against a share of popularity on
another, and a source within noise of popularity everywhere could read higher than one ahead of
it beyond noise on the protocol that decides (§94). Where no protocol decides, a source competes
with popularity only if it is ahead of it beyond noise on every protocol's users pooled
(``pooled_lead``, each user one unit however many protocols hold them): the maximin gives each
protocol one vote, so a lead of one user's hit of 64 after a time cut outvoted popularity's lead
on 554 latest items and shipped transitions at 0.24× popularity on test (sparse / ml-100k / 9,
§104); pooled, a protocol weighs by the evidence it holds, and where even that tells nothing
apart the simplest choice stands, as everywhere else in the rule. "No protocol decides" reads
only the best source by mean against popularity: on one protocol another source may still be
ahead of popularity beyond noise, and then the pooled test (on one protocol: that protocol's
users) lets it compete.

Where each user's latest item is the next step of a sitting (``validation.sitting_share``:
MovieLens users rate dozens of films at once), a time cut that does not decide bars more: what
falls below popularity's mean there, beyond noise or not, is not chosen (``vetoed``; popularity
itself never is). The latest item then measures the order inside a sitting, which neither a later
visit nor serving sees: on dense / ml-100k it ranks the options against the test (Spearman −0.43 /
−0.21) where the ~120-user time cuts rank them with it (0.82 / 0.89) without deciding, and
transitions, led there by its within-sitting lead, shipped at 0.71× popularity (BENCHMARKS §143).
Where the latest item is a later visit (the shop simulator's, about half within the gap), both
protocols ask about later visits, and a cut's point estimate that does not decide stays noise
(§42, §83): no bar. The bar is a prior that the data is judged on later visits: on bursty data
judged on each user's last item it vetoes that test's winner on a ~100-user point estimate
(§150's correction), and on unread samples only that loss was confirmed, not the time-split
gain (§155): ``calibration.sitting_bar`` switches the bar on; it is off by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsmith.evaluation.significance import bootstrap_ci
from recsmith.pipeline.config import PipelineConfig

#: Bootstrap resamples behind every interval (seeded: the same data gives the same choice).
RESAMPLES = 1000


@dataclass(frozen=True, slots=True)
class Tried:
    """One configuration scored on validation: the pipeline configuration that would ship it and
    its per-user NDCG@10 on each protocol (in the order of the validation splits)."""

    name: str
    config: PipelineConfig
    per_user: tuple[np.ndarray, ...]

    @property
    def means(self) -> tuple[float, ...]:
        return tuple(float(p.mean()) for p in self.per_user)


def best_means(singles: Sequence[Tried]) -> tuple[float, ...]:
    """The best single source's mean on each protocol (each protocol's own best)."""
    return tuple(float(m) for m in np.max([t.means for t in singles], axis=0))


@dataclass(frozen=True, slots=True)
class Refs:
    """What shares are read against: each protocol's best single mean where the protocol
    decides (0 where it does not), and where it does not, popularity's per-user scores there
    (``floors``; None elsewhere): a configuration below them beyond noise gets its share of
    popularity's mean on that protocol, any other no share there."""

    means: tuple[float, ...]
    floors: tuple[np.ndarray | None, ...] = ()
    #: On a time cut that does not decide where the latest item continues a sitting, popularity's
    #: mean there (None elsewhere): what falls below it is not chosen (``vetoed``).
    bars: tuple[float | None, ...] = ()

    @property
    def some_decide(self) -> bool:
        """Whether some protocol decides: ``deciding`` gives floors only then (every protocol
        counts, with no floor, where none does)."""
        return bool(self.floors)


def worst_share(t: Tried, refs: Refs | Sequence[float]) -> float:
    """``t``'s lowest share of ``refs`` over the protocols that count against it (reference
    above 0, or below a non-deciding protocol's popularity beyond noise: ``Refs``; a protocol
    where every source scored 0 tells nothing apart); 1 where none counts."""
    return min(_shares(t, refs).values(), default=1.0)


def _shares(t: Tried, refs: Refs | Sequence[float]) -> dict[int, float]:
    """``t``'s share on each protocol that counts against it, by protocol index."""
    refs = refs if isinstance(refs, Refs) else Refs(tuple(refs))
    shares = {n: m / r for n, (m, r) in enumerate(zip(t.means, refs.means, strict=True)) if r > 0}
    for n in _below_popularity(t, refs):
        shares[n] = t.means[n] / float(refs.floors[n].mean())  # type: ignore[union-attr]
    return shares


def _below_popularity(t: Tried, refs: Refs) -> set[int]:
    """The protocols that do not decide where ``t`` falls below popularity beyond noise."""
    below = set()
    for n, floor in enumerate(refs.floors):
        if floor is not None and floor.mean() > 0:
            high = bootstrap_ci(t.per_user[n] - floor, n_resamples=RESAMPLES, seed=0)[1]
            if high < 0:
                below.add(n)
    return below


def vetoed(t: Tried, refs: Refs | Sequence[float]) -> bool:
    """Whether ``t`` falls below its bar (``Refs.bars``) on some protocol: then it is not chosen,
    whatever its shares."""
    return bool(_barred(t, refs))


def _barred(t: Tried, refs: Refs | Sequence[float]) -> list[int]:
    """The protocols where ``t``'s mean is below its bar (``Refs.bars``)."""
    bars = refs.bars if isinstance(refs, Refs) else ()
    return [n for n, bar in enumerate(bars) if bar is not None and t.means[n] < bar]


def deciding(
    singles: Sequence[Tried], seed: int, barring: Sequence[bool] = ()
) -> tuple[Refs, list[dict[str, Any]]]:
    """The references the choice is made against (``Refs``) and, per protocol, whether it
    decides and on what evidence. ``singles[0]`` is popularity alone (the baseline every
    source must beat). A protocol decides where the paired bootstrap interval (over its users)
    of its best single source minus popularity lies above zero — or, where popularity is the
    best, of popularity minus the runner-up: then it tells popularity apart from the personal
    sources. Where no protocol decides, every one counts against its best mean (the rule before,
    §35): nothing better is known, and which source may compete with popularity there is
    ``best_single``'s pooled test (the best by mean may not be ahead of popularity where a
    runner-up is). Each protocol's entry says
    whether it ``decides`` and its ``evidence`` (that paired difference and its interval).
    ``barring``: the protocols (time cuts, where each user's latest item continues a sitting)
    that, where they do not decide and another does, bar what falls below popularity's mean
    there (``Refs.bars``); none where not given."""
    refs = best_means(singles)
    evidence: list[dict[str, Any]] = []
    for n in range(len(refs)):
        ranked = sorted(singles, key=lambda t: -t.means[n])  # stable: popularity first on ties
        best = ranked[0]
        other = singles[0] if best is not singles[0] else ranked[min(1, len(ranked) - 1)]
        diff = best.per_user[n] - other.per_user[n]
        low, high = bootstrap_ci(diff, n_resamples=RESAMPLES, seed=seed)
        said = f"{best.name} − {other.name} {diff.mean():+.4f} [{low:+.4f}, {high:+.4f}]"
        evidence.append({"decides": bool(low > 0), "evidence": said})
    if not any(e["decides"] for e in evidence):
        return Refs(refs), evidence
    decides = [e["decides"] for e in evidence]
    barring = list(barring) or [False] * len(refs)
    return (
        Refs(
            tuple(r if d else 0.0 for r, d in zip(refs, decides, strict=True)),
            tuple(None if d else p for p, d in zip(singles[0].per_user, decides, strict=True)),
            tuple(
                singles[0].means[n] if bar and not d else None
                for n, (d, bar) in enumerate(zip(decides, barring, strict=True))
            ),
        ),
        evidence,
    )


def best_single(
    singles: Sequence[Tried], refs: Refs, seed: int, users: Sequence[np.ndarray] = ()
) -> Tried:
    """The single source that ships unless a richer choice beats it: the highest worst share
    among popularity alone (``singles[0]``) and the sources ahead of it (``_ahead``: beating it
    as any richer choice must, or above it on every protocol) — where some protocol decides.
    Popularity is the simplest choice and the floor #15 sets; any other source (below or tied
    with it on some protocol, and not beating it as a richer choice must) has not earned its
    place, however its worst share reads: on
    a time split (market / ml-100k / 3, BENCHMARKS §94) EASE's worst share (0.757: its share of
    trending on the time cuts, where it led popularity within noise; below popularity within
    noise on the latest item, so no share there) beat trending's (0.708: its share of popularity
    on a latest item that did not decide), and EASE shipped at 0.38× popularity on test, where
    trending, ahead of popularity beyond noise on the time cuts, scored 1.05×. A source above
    popularity everywhere, if within noise, still competes (dense / ml-100k / 6: EASE, 3.1×
    popularity on test). Where no protocol decides, the best source by mean is ahead of
    popularity beyond noise on no protocol alone; a source competes if it is ahead on the users
    of every protocol pooled (``_ahead_pooled``; ``users``: each protocol's user ids, as
    ``pooled_lead`` takes them), else popularity, the simplest choice, is the base: the highest
    worst share of noise had shipped a source below popularity on test on four of the five such
    samples where it picked another (sparse / ml-100k / 9: transitions at 0.24×, on one user's
    hit of 64 after the time cuts), and above it on the fifth (sparse / ml-100k / 0: trending
    4.35×, where the 539 latest items nearly decided for popularity; §104). Ties: the first
    (popularity)."""
    popularity = singles[0]
    if refs.some_decide:
        ahead = [t for t in singles[1:] if _ahead(t, popularity, refs, seed)]
    else:
        ahead = [t for t in singles[1:] if _ahead_pooled(t, popularity, refs, seed, users)]
    return max([popularity, *ahead], key=lambda t: worst_share(t, refs))


def _ahead(t: Tried, popularity: Tried, refs: Refs, seed: int) -> bool:
    """Whether ``t`` is ahead of ``popularity``: it beats it as a richer choice must
    (``prefer``, which never lets a ``vetoed`` one replace popularity), or its mean is above
    popularity's on every protocol (ahead everywhere, if within noise: then above every bar)."""
    everywhere = all(m > p for m, p in zip(t.means, popularity.means, strict=True))
    return everywhere or prefer(popularity, "", t, refs, seed)[0] is t


def pooled_lead(
    t: Tried, popularity: Tried, refs: Refs, users: Sequence[np.ndarray] = ()
) -> np.ndarray:
    """``t`` minus ``popularity`` (or any simpler choice: ``prefer``'s pooled clause reads the
    same sample against it) on the validation users of every protocol pooled into one
    sample, each protocol's differences in units of its reference (``Refs.means``: where no
    protocol decides, its best single mean; a protocol where every source scored 0 tells
    nothing and is left out). Pooled, a protocol weighs by its users — by how much evidence it
    holds — where the maximin gives each protocol one vote whatever it holds.

    ``users`` holds each protocol's user ids in the order of its scores (calibration's
    ``ByUser.users``): a user on several protocols is one row, the SUM of their scaled
    differences — one bootstrap unit, as ``ByUser`` makes a user on several splits one (§65).
    Every time-cut user returns after the cut and so is also a latest-item user (sparse /
    ml-100k / 9: 64 of 64); as two rows, the same lead counted twice read as beyond noise. Summed
    rather than averaged, each protocol keeps the weight of its users (the mean over users is
    the mean over entries times entries / users), so only the interval changes: it resamples
    people. Without ids (a recorded case, a hand-made one) each protocol's users are taken as
    distinct people."""
    counting = [n for n, r in enumerate(refs.means) if r > 0]
    if not counting:
        return np.zeros(1)
    parts = [(t.per_user[n] - popularity.per_user[n]) / refs.means[n] for n in counting]
    if not users:
        return np.concatenate(parts)
    for n, part in zip(counting, parts, strict=True):
        if len(users[n]) != len(part):
            raise ValueError(
                f"users[{n}] holds {len(users[n])} ids for {len(part)} scores: each protocol "
                "needs one id per scored user"
            )
    ids, rows = np.unique(np.concatenate([users[n] for n in counting]), return_inverse=True)
    return np.bincount(rows, weights=np.concatenate(parts), minlength=len(ids))


def _ahead_pooled(
    t: Tried, popularity: Tried, refs: Refs, seed: int, users: Sequence[np.ndarray]
) -> bool:
    """Where no protocol decides: whether ``t`` is ahead of ``popularity`` beyond noise on the
    validation users pooled (``pooled_lead``'s bootstrap interval above 0)."""
    lead = pooled_lead(t, popularity, refs, users)
    return bootstrap_ci(lead, n_resamples=RESAMPLES, seed=seed)[0] > 0


def prefer(
    simple: Tried,
    reason: str,
    rich: Tried,
    refs: Refs | Sequence[float],
    seed: int,
    users: Sequence[np.ndarray] = (),
) -> tuple[Tried, str]:
    """``rich`` replaces ``simple`` where either (1) it lifts the protocol where ``simple`` is
    weakest (its lowest share) by more than noise — the lower end of the paired bootstrap
    interval of the per-user difference there above zero — and its own worst share is not
    lower; or (2) it is better beyond noise on a protocol that counts (``Refs.means`` above 0),
    worse beyond noise on none (no interval's upper end below zero) and below popularity beyond
    noise on no protocol where ``simple`` is not (the collapse ``Refs.floors`` guards). (2) is
    for a weakest protocol that cannot show the gain: pooled time cuts led by trending, where
    every personal source's share is low and ~200 users are noise, while each user's latest
    item shows the fusion ahead of EASE beyond noise (ml-100k long sequences, BENCHMARKS §60).
    On one protocol both are the plain rule: better beyond noise. Neither where ``rich`` is
    ``vetoed`` and ``simple`` is not.

    Given ``users`` (each protocol's user ids, as ``pooled_lead`` takes them), also (3): its
    lead on the users of the protocols that count pooled (``pooled_lead``: a user on several
    protocols one unit, the sum of their scaled differences) is beyond noise, and (2)'s other
    conditions hold. Each protocol alone may hold too few users to show a lead both show: on
    ml-100k ``temporal:0.8`` the fused order led ``itemknn_recent`` by +0.0112 [−0.0019, +0.0269]
    on 143 time-cut users and +0.0083 [−0.0037, +0.0183] on 750 latest items (BENCHMARKS §159),
    and the simpler source shipped. Without ``users`` there is no clause (3): counted as
    distinct people, a time-cut user (also a latest-item user) would be two units."""
    refs = refs if isinstance(refs, Refs) else Refs(tuple(refs))
    if vetoed(rich, refs) and not vetoed(simple, refs):
        below = "; ".join(
            f"{rich.means[n]:.4f} < popularity's {refs.bars[n]:.4f} on protocol {n + 1}"
            for n in _barred(rich, refs)
        )
        return simple, f"{reason}; {rich.name} vetoed: below popularity on a time cut ({below})"
    diffs = [r - s for r, s in zip(rich.per_user, simple.per_user, strict=True)]
    bounds = [bootstrap_ci(d, n_resamples=RESAMPLES, seed=seed) for d in diffs]
    shares = _shares(simple, refs) or {0: 1.0}
    weakest = min(shares, key=shares.__getitem__)
    low, high = bounds[weakest]
    shares = f"worst share {worst_share(rich, refs):.3f} vs {worst_share(simple, refs):.3f}"
    said = f"{diffs[weakest].mean():+.4f} [{low:+.4f}, {high:+.4f}] on protocol {weakest + 1}"
    if low > 0 and worst_share(rich, refs) >= worst_share(simple, refs):
        return rich, f"beats {simple.name} by {said}, {shares}"
    counting = [n for n, r in enumerate(refs.means) if r > 0] or range(len(diffs))
    gains = [n for n in counting if bounds[n][0] > 0]
    # worse beyond noise on no protocol, below popularity beyond noise nowhere simple is not
    safe = _below_popularity(rich, refs) <= _below_popularity(simple, refs)
    safe = safe and all(h >= 0 for _, h in bounds)
    each = "; ".join(
        f"{d.mean():+.4f} [{lo:+.4f}, {hi:+.4f}] on protocol {n + 1}"
        for n, (d, (lo, hi)) in enumerate(zip(diffs, bounds, strict=True))
    )
    if gains and safe:
        return rich, f"beats {simple.name} beyond noise where it counts, worse on none ({each})"
    if users and safe:
        lead = pooled_lead(rich, simple, refs, users)
        low, high = bootstrap_ci(lead, n_resamples=RESAMPLES, seed=seed)
        if low > 0:
            pooled = f"{lead.mean():+.3f} [{low:+.3f}, {high:+.3f}] of the references"
            return rich, (
                f"beats {simple.name} beyond noise on the validation users pooled ({pooled}, "
                f"{len(lead)} users), worse on no protocol ({each})"
            )
    return simple, f"{reason}; {rich.name} not better by more than noise ({said}, {shares})"


#: A protocol trade's bounds (``bounded_trade``, BENCHMARKS §188): each protocol's loss at most
#: this share of the simpler choice's mean there ...
TRADE_LOSS = 0.015
#: ... and the gain beyond noise elsewhere at least this many times each loss, as shares.
TRADE_GAIN_RATIO = 2.0
#: What a share's float rounding may add to a bound it meets exactly.
_TIE = 1e-12


def relative_changes(simple: Tried, rich: Tried) -> list[float]:
    """``rich``'s mean on each protocol over ``simple``'s, less 1 (0 where ``simple`` scores 0:
    no share to lose or gain)."""
    return [(r - s) / s if s > 0 else 0.0 for r, s in zip(rich.means, simple.means, strict=True)]


def bounded_trade(simple: Tried, rich: Tried, refs: Refs, seed: int) -> bool:
    """Whether ``rich`` trades a small loss on one protocol for a gain several times larger on
    another: better beyond noise on a protocol that counts (as ``prefer``'s clause (2)), and on
    every protocol (counting or not) its mean at most ``TRADE_LOSS`` below ``simple``'s and its
    loss there, as a share of ``simple``'s mean, at most 1 / ``TRADE_GAIN_RATIO`` of the largest
    such gain; not ``vetoed`` where ``simple`` is not, below popularity beyond noise nowhere
    ``simple`` is not. Both bounds hold at equality (``_TIE``: 45 of 3,000 is −0.015000000000000013
    in floats).

    For a switch built to trade (EASE's recency weights lift each user's next item and cost a
    time cut's wider window a little): ``prefer`` refuses any loss beyond noise, and at 5,000
    validation users a time cut's −1.0 % / −1.1 % is beyond noise where the latest item gains
    +4.8 % / +3.9 % (hidden-long seeds 6 / 7, §187). Either protocol may be the one the data is
    judged by: the bound caps what the time cut can lose, the ratio keeps the trade well ahead
    where both count alike. A protocol where ``simple`` scores 0 has no share to lose or gain
    (``relative_changes``): a gain there pays for no loss."""
    if vetoed(rich, refs) and not vetoed(simple, refs):
        return False
    if not _below_popularity(rich, refs) <= _below_popularity(simple, refs):
        return False
    counting = [n for n, r in enumerate(refs.means) if r > 0] or range(len(rich.per_user))
    change = relative_changes(simple, rich)
    diffs = [r - s for r, s in zip(rich.per_user, simple.per_user, strict=True)]
    ahead = [n for n in counting if bootstrap_ci(diffs[n], n_resamples=RESAMPLES, seed=seed)[0] > 0]
    gains = [change[n] for n in ahead]
    if not gains:
        return False
    worst = -min(change)
    return worst <= TRADE_LOSS + _TIE and worst * TRADE_GAIN_RATIO <= max(gains) + _TIE
