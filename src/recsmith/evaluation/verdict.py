"""What an evaluation lets one conclude, in plain words, and a warning when it cannot conclude.

A table of means always has a best row, and a newcomer reads it as the winner. On a temporal cut
of a small data set only a few users have both a past and a future, and then no difference is
significant: the table must say so, say how many users it would take to tell the leaders apart,
and point to a split that evaluates more users. ``judge`` turns ``compare_to_best``'s paired
tests into that verdict; the CLI table, ``--json`` and the HTML report all print the same one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from recsmith.evaluation.runner import Comparison

#: Family-wise level the verdict tests at (Holm-corrected p-values are compared with it).
ALPHA = 0.05
#: Power the users-needed figure is computed for (``significance.paired_sample_size``).
POWER = 0.8


@dataclass(frozen=True, slots=True)
class Verdict:
    """The plain conclusion, and the warning (``None`` when there is nothing to warn about)."""

    text: str
    warning: str | None
    evaluated_users: int
    users_in_data: int
    users_needed: int | None  # for the clearest difference the evaluation left undecided
    suggested_split: str | None


def suggest_split(split: str) -> str | None:
    """A split that evaluates more users than ``split``, or ``None`` when none does.

    Leave-last-out holds out each user's latest event, so every user with two or more events is
    evaluated; a global time cut (or a random share) evaluates only the users active on both of
    its sides.
    """
    return None if split.startswith("leave-last-out") else "leave-last-out"


def judge(
    comparisons: Sequence[Comparison],
    *,
    evaluated_users: int,
    users_in_data: int,
    split: str,
    k: int,
) -> Verdict:
    """The verdict of ``comparisons`` (the best model against each other one) at ``ALPHA``.

    The text names the runner-up when the best is not significantly better than it ("no model is
    significantly better than ease at p < 0.05"), else the models the best beats. The warning
    fires when some difference is undecided and detecting it at ``ALPHA`` with ``POWER`` would
    take more users than were evaluated; it names the clearest such difference (the fewest users
    needed), since if even that one is out of reach the evaluation cannot rank the models.
    """
    if not comparisons and evaluated_users < 2:
        # another split helps only where the data holds more users than were evaluated
        suggestion = suggest_split(split) if users_in_data > evaluated_users else None
        noun = "user" if evaluated_users == 1 else "users"
        return Verdict(
            f"{evaluated_users:,} {noun} evaluated: a paired test needs two or more, "
            "nothing compared",
            f"--split {suggestion} evaluates every user with two or more events"
            if suggestion is not None
            else None,
            evaluated_users,
            users_in_data,
            None,
            suggestion,
        )
    if not comparisons:
        return Verdict(
            "one model evaluated: nothing to compare",
            None,
            evaluated_users,
            users_in_data,
            None,
            None,
        )
    best = comparisons[0].best
    metric = f"{comparisons[0].metric}@{k}"
    runner_up = min(comparisons, key=lambda c: c.mean_diff)
    won = [c for c in comparisons if c.p_holm < ALPHA]
    undecided = [c for c in comparisons if c.p_holm >= ALPHA]
    if not won:
        # a tie has no leader: "popular leads on ndcg@10 by +0.0000" read as a (tiny) win
        lead = (
            f"{best} and {runner_up.model} tie on {metric}"
            if runner_up.mean_diff == 0.0
            else f"{best} leads on {metric} by {runner_up.mean_diff:+.4f}"
        )
        text = (
            f"no model is significantly better than {runner_up.model} at p < {ALPHA:g} "
            f"({lead}, p_holm = {runner_up.p_holm:.2g})"
        )
    else:
        text = f"{best} is better than " + ", ".join(_p(c) for c in won) + f" at p < {ALPHA:g}"
        if undecided:
            text += "; not significantly better than " + ", ".join(_p(c) for c in undecided)
    ties = tie_warning(undecided, users_in_data, metric)
    reachable = [c for c in undecided if c.users_needed is not None]
    needed = min((c.users_needed or 0) for c in reachable) if reachable else 0
    if needed <= evaluated_users:
        return Verdict(text, ties, evaluated_users, users_in_data, None, None)
    clearest = next(c for c in reachable if c.users_needed == needed)
    suggestion = suggest_split(split)
    more = f", more than the {users_in_data:,} in the data" if needed > users_in_data else ""
    evaluated = (
        f"all {evaluated_users:,} users were evaluated, still"
        if evaluated_users >= users_in_data
        else f"only {evaluated_users:,} of {users_in_data:,} users were evaluated:"
    )
    warning = (
        f"{evaluated} too few to separate the models. Telling {best} from {clearest.model} "
        f"apart (Δ {metric} {clearest.mean_diff:+.4f}) at p < {ALPHA:g} with {POWER:.0%} power "
        f"needs about {needed:,} users{more}."
    )
    if suggestion is not None:
        warning += f" --split {suggestion} evaluates more: every user with two or more events."
    if ties is not None:
        warning = f"{ties} {warning}"
    return Verdict(text, warning, evaluated_users, users_in_data, needed, suggestion)


def tie_warning(undecided: Sequence[Comparison], users_in_data: int, metric: str) -> str | None:
    """What exact ties mean, or None without one. A paired difference that is 0 on every user
    has no variance: no test weighs it and no user count can be computed for it, so the
    too-few-users warning stays silent, yet a tie on a few users says little about the others:
    no difference among N users bounds the share of users on whom the two differ below 3/N at
    95 % (the rule of three), which for a few dozen users is most of a catalogue's audience.
    Identical lists say more than equal scores (two lists can both miss every user's item)."""
    ties = [c for c in undecided if c.tied_users]
    if not ties:
        return None
    best, n = ties[0].best, ties[0].tied_users
    same = [c.model for c in ties if c.identical_lists]
    equal = [c.model for c in ties if not c.identical_lists]
    said = []
    if same:
        said.append(f"{_and([best, *same])} gave identical lists on all {n:,} users")
    if equal:
        said.append(
            f"{_and([best, *equal])} score exactly the same {metric} on every one of the "
            f"{n:,} users, with different lists"
        )
    of = f" (of {users_in_data:,} in the data)" if n < users_in_data else ""
    return (
        f"{'; '.join(said)}{of}: a tie no test can weigh, and not evidence that they are equal: "
        f"{n:,} users only say they differ for fewer than {min(1.0, 3 / n):.0%} of users like "
        "these (95 %, rule of three)."
    )


def _and(names: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _p(c: Comparison) -> str:
    return f"{c.model} (p_holm = {c.p_holm:.2g})"


def users_needed_text(c: Comparison) -> str:
    """A comparison's users-needed cell: the count, or a dash where the difference is zero."""
    return "—" if c.users_needed is None else f"{c.users_needed:,}"
