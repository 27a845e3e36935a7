"""The collector pause around bulk loads: off inside, restored after, whatever happens."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from recsmith.gc_pause import paused_gc


@pytest.fixture(autouse=True)
def _collector_on() -> Iterator[None]:
    gc.enable()
    yield
    gc.enable()


def test_no_collection_inside_and_the_collector_is_back_after() -> None:
    with paused_gc():
        assert not gc.isenabled()
        before = gc.get_stats()[0]["collections"]
        _ = [[i] for i in range(50_000)]  # far past the 700-allocation threshold
        assert gc.get_stats()[0]["collections"] == before
    assert gc.isenabled()


def test_nested_pauses_and_errors_restore_the_previous_state() -> None:
    with pytest.raises(RuntimeError), paused_gc():
        with paused_gc():
            pass
        assert not gc.isenabled()  # the inner block must not switch it back on
        raise RuntimeError("load failed")
    assert gc.isenabled()
    gc.disable()
    with paused_gc():
        pass
    assert not gc.isenabled()  # a caller that had it off keeps it off


def test_loading_a_catalogue_leaves_the_collector_on() -> None:
    from recsmith.events.validate import validate_items

    items, _ = validate_items([{"item_id": f"i{n}"} for n in range(100)])
    assert len(items) == 100 and gc.isenabled()
