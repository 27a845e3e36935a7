"""RetailRocket importer on a tiny generated copy of the Kaggle layout (no real copy is here)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from recsmith.config import EventSettings
from recsmith.events.importers import import_source, read_source, retailrocket
from recsmith.store.sqlite import SQLiteStore

EVENTS = """timestamp,visitorid,event,itemid,transactionid
1433221332117,257597,view,355908,
1433224214164,992329,view,248676,
1433221999827,111016,addtocart,355908,
1433222276276,111016,transaction,355908,4000
1433193500981,483717,wishlist,248676,
1433193500982,,view,248676,
"""
PART1 = """timestamp,itemid,property,value
1435460400000,355908,categoryid,1338
1435460400000,355908,available,1
1431226800000,355908,888,1116713 960601 n277.200
1431226800000,248676,available,0
"""
PART2 = """timestamp,itemid,property,value
1433041200000,355908,available,0
1441508400000,355908,888,1116713 n300.000
1430622000000,355908,categoryid,999
1442113200000,248676,790,n15360.000
"""


def _layout(root: Path) -> Path:
    root.mkdir()
    (root / "events.csv").write_text(EVENTS)
    (root / "item_properties_part1.csv").write_text(PART1)
    (root / "item_properties_part2.csv").write_text(PART2)
    (root / "category_tree.csv").write_text("categoryid,parentid\n1338,1\n")
    return root


@pytest.mark.parametrize("reduce_rows", [2_000_000, 2])
def test_retailrocket_events_and_latest_properties(
    tmp_path: Path,
    store: SQLiteStore,
    settings: EventSettings,
    monkeypatch: pytest.MonkeyPatch,
    reduce_rows: int,
) -> None:
    monkeypatch.setattr(retailrocket, "_REDUCE_ROWS", reduce_rows)  # 2: exercise the re-reduction
    source = read_source("retailrocket", _layout(tmp_path / "rr"))
    assert source.total_events == 6
    result = import_source(store, source, settings)
    assert result.accepted == 4
    assert result.items.accepted == 2
    bad = {r.index: r for r in result.rejected}
    assert set(bad) == {4, 5}
    assert "unknown event type" in bad[4].reason  # "wishlist" kept by name, then refused
    assert bad[5].errors[0].field == "user_id"

    events = pd.concat(list(store.scan()), ignore_index=True).set_index("event_type")
    assert sorted(events.index) == ["add_to_cart", "purchase", "view", "view"]
    purchase = events.loc["purchase"]
    assert purchase["user_id"] == "111016" and purchase["item_id"] == "355908"
    assert json.loads(purchase["context"]) == {"transaction_id": "4000"}
    assert purchase["ts"] == 1_433_222_276_276_000  # milliseconds read as such

    item = store.get_item("355908")
    assert item is not None
    assert item.categories == ["1338"]  # the newer of 999 (older) and 1338
    assert item.available is True  # 1 at 1435460400000 beats 0 at 1433041200000
    assert item.properties == {"888": "1116713 n300.000"}
    other = store.get_item("248676")
    assert other is not None and other.available is False
    assert other.properties == {"790": "n15360.000"}

    dead = store.dead_letters()
    assert {d.source for d in dead} == {"events.csv"}
    assert sorted(d.record_index for d in dead) == [4, 5]
