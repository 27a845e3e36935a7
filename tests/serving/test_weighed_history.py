"""A single-model release scores a user it knows only by their stored items from the items they
liked, never from one they rated 0 or below, which stays seen (issue #15): the store's plain read
knows no weights, so such an item was scored as history. Through the HTTP app on every way it
reads the stored items (the route, the coalescer's flush, a gathered group: ``read_orders``), on
SQLite and PostgreSQL; the oracle is the bundle's own item-scored list of the liked items alone,
with every stored item masked, computed apart from serving."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry
from read_orders import served_lists

from recsmith.bundle import ModelBundle
from recsmith.config import LifecycleSettings
from recsmith.lifecycle.shadow import ShadowJob, ShadowMetrics, ShadowRunner
from recsmith.serving.coalesce import Options, UserQuery
from recsmith.store.base import EventStore
from recsmith.testing.contracts import event, ingest

STORES = ("sqlite", "postgres")
K = 50  # ``served_lists``' k


def _from_items(bundle: ModelBundle, liked: list[str], seen: list[str]) -> list[str]:
    listed = bundle.recommend_for_items([liked], K, exclude=[seen])
    return [str(i) for i in listed.item_ids[0]]


def test_an_item_rated_below_zero_is_seen_but_no_history(
    bundle_dir: Path,
    bundle: ModelBundle,
    store: EventStore,
    store_url: str,
    keys: dict[str, dict[str, str]],
) -> None:
    liked = ["i0", "i1"]
    # an item whose neighbours move the list: scored as history, it changes what is listed
    disliked = next(
        f"i{n}"
        for n in range(2, 50)
        if _from_items(bundle, [*liked, f"i{n}"], [*liked, f"i{n}"])
        != _from_items(bundle, liked, [*liked, f"i{n}"])
    )
    rated = event(disliked, user="newbie", kind="rating", value=-2.0, h=2)
    # "known" is a training user: read the cheap way, in the same bursts
    ingest(store, [event(liked[0], user="newbie"), event(liked[1], user="newbie", h=1), rated])
    want = _from_items(bundle, liked, [*liked, disliked])
    for way, bodies in served_lists(bundle_dir, store, store_url, ["newbie", "u1"], keys).items():
        newbie = bodies[0]
        assert newbie["tier"] == "session", way  # scored from its items
        assert [item["item_id"] for item in newbie["items"]] == want, way
        assert bodies[1]["tier"] == "personalised", way


def test_a_shadow_weighing_history_behind_one_that_did_not_reads_it_again(
    bundle: ModelBundle, store: EventStore
) -> None:
    """Behind a pipeline (its history every stored item, by id), an item-kNN shadow answering a
    user it does not know reads which items they liked, in the shadow's thread."""
    met = [event("i0", user="newbie"), event("i1", user="newbie", h=2)]
    ingest(store, [*met, event("i5", user="newbie", kind="rating", value=-2.0, h=1)])
    metrics = ShadowMetrics(CollectorRegistry())
    runner = ShadowRunner(None, LifecycleSettings(), metrics, store=store)
    query = UserQuery("newbie", ["i5", "i1", "i0"], [], {}, history=["i5", "i1", "i0"])
    again = runner._in_its_order(ShadowJob(query, Options(K), [], None), bundle)
    assert again.history == ["i0", "i1"]  # i5 rated -2: seen only
    weighed = ShadowJob(query, Options(K), [], None, by_time=True, weighed=True)
    assert runner._in_its_order(weighed, bundle) is query  # read so already: as it came
