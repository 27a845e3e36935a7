"""A small group of live events (what a group commit of single-event requests holds) takes the
plain-row path: validated record by record, its reused-id check, attribution, privacy screen and
online-state update done without a frame where nothing needs one. The column path (the frame, as a
large batch takes it) is the reference: every generated group is ingested once each way into two
stores that hold the same history, and every answer must be the same — each request's counts,
rejections (index, field, reason) and attributions, what the online state is told, what is
attributed, and the stored events, dead letters and attributions, cell for cell.

The records mix what live traffic sends (new ids, views) with what makes the row path hand over
to the frame or refuse: ids repeated in the group or already stored (with the same or other
content), lists named rightly and wrongly, outcome types the window rule attributes, an erased
person and one who withdrew tracking consent, and invalid values.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsmith.config import DecisionSettings, EventSettings
from recsmith.decisions.attribution import Attributor
from recsmith.decisions.record import decision
from recsmith.events.schema import IngestResult
from recsmith.privacy.marks import Mark
from recsmith.privacy.view import view_of
from recsmith.store import ingest
from recsmith.store.ingest import ingest_event_batches
from recsmith.store.sqlite import SQLiteStore

T0 = datetime.now(UTC) - timedelta(days=2)
EVENTS = EventSettings()
DECISIONS = DecisionSettings()  # 24 h window; click, add_to_cart, purchase are outcomes


def _hours(h: float) -> str:
    return (T0 + timedelta(hours=h)).isoformat()


good = st.fixed_dictionaries(
    {
        "user_id": st.sampled_from(["u1", "u1", "u1", "u2", "erased", "untracked", None]),
        "item_id": st.sampled_from(["i1", "i2", "i3"]),
        "event_type": st.sampled_from(["view", "view", "click", "click", "purchase"]),
        "timestamp": st.sampled_from([_hours(0.5), _hours(2), 1e9]),
    },
    optional={
        # few ids, so groups repeat them and meet the ones stored; absent: a content id
        "event_id": st.sampled_from(["a", "b", "c", "s"]),
        "session_id": st.just("s1"),
        "value": st.sampled_from([1, 2.5, "3"]),
        "context": st.sampled_from([{"page": "home"}, {"n": 1}]),
        "recommendation_id": st.sampled_from(["rA", "rB", "nope"]),
        "colour": st.none(),  # as if not sent
    },
)
#: one field spoiled, in one record of four or so
spoil = st.sampled_from(
    [
        *[None] * 30,
        ("timestamp", "yesterday"),
        ("user_id", 7),
        ("event_type", "teleport"),
        ("value", "x"),
        ("context", "not json"),
        ("colour", "red"),
        ("item_id", ""),
        ("position", 2),  # needs a recommendation_id, which some records have
        ("position", 1),
    ]
)
record = st.builds(lambda r, bad: r if bad is None else {**r, bad[0]: bad[1]}, good, spoil)


def _own(records: list[Any], case: int) -> list[Any]:
    """The records with ids of this case's own, so cases never meet in the shared stores."""
    return [
        {k: f"{case}-{v}" if k == "event_id" else v for k, v in r.items()}
        if isinstance(r, dict)
        else r
        for r in records
    ]


def _seeded(path: Path) -> SQLiteStore:
    """A store that served two lists to ``u1`` (so explicit ids and the window rule find them)
    and knows an erased person and one who withdrew tracking."""
    store = SQLiteStore(path)
    store.append_decisions(
        [
            decision(
                rid,
                unit="u1",
                unit_kind="user",
                route="recommendations",
                release="r1",
                item_ids=items,
                scores=[1.0] * len(items),
                sources=[("als",)] * len(items),
                served_at=T0 + timedelta(hours=hours),
            )
            for rid, items, hours in (("rA", ["i1", "i2"], 0), ("rB", ["i2", "i3"], 1))
        ]
    )
    view = view_of(store)
    store.set_privacy_mark(Mark(view.subject("erased"), erased=True))
    store.set_privacy_mark(Mark(view.subject("untracked"), tracking=False))
    view.refresh()
    return store


def _run(
    store: SQLiteStore, batches: list[list[Any]], source: str
) -> tuple[list[IngestResult], list[Any], list[Any]]:
    pushed: list[Any] = []
    attributed: list[Any] = []
    results = ingest_event_batches(
        store,
        [[r for r in b if isinstance(r, dict)] for b in batches],
        EVENTS,
        source=source,
        on_stored=pushed.append,
        attributor=Attributor(store, DECISIONS),  # no wait for unknown ids: nothing is pending
        on_attributed=lambda frame: attributed.append(_cells(frame)),
    )
    return results, pushed, attributed


def _cells(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame's records with None for every missing cell (NaN is not equal to itself)."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


STORED = (
    "SELECT event_id, user_id, session_id, item_id, event_type, value, typeof(value), ts, "
    "context, recommendation_id, position FROM events WHERE event_id LIKE '{case}-%' "
    "OR event_id NOT LIKE '%-%' ORDER BY rowid"
)


def _kept(path: Path, case: int) -> tuple[list[Any], list[Any], list[Any]]:
    with sqlite3.connect(path) as conn:
        events = conn.execute(STORED.format(case=case)).fetchall()
        letters = conn.execute(
            "SELECT record_index, errors, payload FROM dead_letters WHERE source = ? ORDER BY id",
            (f"case-{case}",),
        ).fetchall()
        attributions = conn.execute(
            "SELECT * FROM attributions WHERE event_id LIKE ? ORDER BY rowid", (f"{case}-%",)
        ).fetchall()
    return events, letters, attributions


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[list[SQLiteStore], list[Path]]]:
    paths = [tmp_path / "rows.sqlite", tmp_path / "frame.sqlite"]
    opened = [_seeded(path) for path in paths]
    yield opened, paths
    for store in opened:
        store.close()


def test_a_small_group_gets_the_answers_the_frame_path_gives(
    stores: tuple[list[SQLiteStore], list[Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    (by_rows, by_frame), paths = stores
    cases = iter(range(10**6))
    took_rows: list[bool] = []
    accepted: list[int] = []  # per case: events stored new, and attributions
    # a spy on the row path's one entry point: which groups took it
    real_takes = ingest.takes_records

    @settings(
        max_examples=120,
        database=None,
        derandomize=True,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(
        earlier=st.lists(record, max_size=3),
        batches=st.lists(st.lists(record, min_size=1, max_size=4), min_size=1, max_size=4),
    )
    def same(earlier: list[dict[str, Any]], batches: list[list[dict[str, Any]]]) -> None:
        case = next(cases)
        source = f"case-{case}"
        answers = []
        for store, path, rows in ((by_rows, paths[0], True), (by_frame, paths[1], False)):
            with monkeypatch.context() as patched:
                if not rows:  # the reference: every batch validated column-wise, as a frame
                    patched.setattr(ingest, "takes_records", lambda _: False)
                else:
                    patched.setattr(
                        ingest,
                        "takes_records",
                        lambda r: took_rows.append(real_takes(r)) or took_rows[-1],
                    )
                if earlier:
                    _run(store, [_own(earlier, case)], f"earlier-{case}")
                outcome = _run(store, [_own(b, case) for b in batches], source)
            answers.append((outcome, _kept(path, case)))
        assert answers[0] == answers[1]
        results = answers[0][0][0]
        accepted.append(sum(r.accepted for r in results))

    same()
    assert sum(took_rows) > 100  # the groups did take the row path
    attributions = pd.read_sql("SELECT * FROM attributions", sqlite3.connect(paths[0]))
    letters = pd.read_sql("SELECT errors FROM dead_letters", sqlite3.connect(paths[0]))
    # the generator is worth its cases: stores, attributes and refuses for every reason
    assert sum(accepted) > 60 and sum(n > 0 for n in accepted) > 40
    assert (attributions["rule"] == "window").sum() > 5
    assert (attributions["rule"] == "explicit").sum() > 20
    for reason in ("already used", "unknown recommendation_id", "erased", "tracking", "required"):
        assert letters["errors"].str.contains(reason).any(), reason
