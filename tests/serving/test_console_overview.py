"""The console's overview figures in a real browser against a real server: events per minute over
the last hour, dead letters and their reasons, and request latency, each equal to what the test
computed by hand from the events, dead letters and requests it made (README "Web console").

Skips without chromium unless ``RECSMITH_REQUIRE_CHROMIUM=1`` (as ``test_console``).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from live_server import live_server
from prometheus_client.parser import text_string_to_metric_families

from recsmith.bundle import ModelBundle
from recsmith.config import EventSettings, Settings
from recsmith.events.schema import FieldError, Rejection
from recsmith.events.validate import validate_events
from recsmith.features.interactions import Interactions
from recsmith.governance.releases import ModelRegistry
from recsmith.models.registry import create
from recsmith.monitoring.overview import histogram_quantile
from recsmith.serving import create_api_key
from recsmith.store.sqlite import SQLiteStore
from recsmith.testing.recommender import checkerboard_events

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: events written this many minutes ago: 8 fall in the last hour, in three minutes (4, 3, 1)
MINUTES_AGO = [25] * 4 + [12] * 3 + [2] + [70, 90, 90]


def test_histogram_quantile_interpolates_as_prometheus_does() -> None:
    # buckets <=1: 2, (1,2]: 4, (2,4]: 2, +Inf: 2 (cumulative 2, 6, 8, 10)
    bounds, cumulative = [1.0, 2.0, 4.0], [2.0, 6.0, 8.0, 10.0]
    assert histogram_quantile(bounds, cumulative, 0.1) == pytest.approx(0.5)  # rank 1 of 2 in [0,1]
    assert histogram_quantile(bounds, cumulative, 0.5) == pytest.approx(1.75)  # rank 5: 1 + 3/4
    assert histogram_quantile(bounds, cumulative, 0.7) == pytest.approx(3.0)  # rank 7: 2 + 2*1/2
    assert histogram_quantile(bounds, cumulative, 0.99) == 4.0  # in +Inf: the largest bound
    assert histogram_quantile(bounds, [0.0, 0.0, 0.0, 0.0], 0.5) is None


@pytest.fixture
def page() -> Iterator[object]:
    if CHROMIUM is None:
        if os.environ.get("RECSMITH_REQUIRE_CHROMIUM") == "1":
            pytest.fail("chromium is required (apt-get install chromium)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        page.set_default_timeout(15_000)
        yield page
        browser.close()


def _served_shop(tmp_path: Path) -> tuple[Settings, str]:
    """A served release, the live events of ``MINUTES_AGO`` and five dead letters."""
    events = checkerboard_events()  # from 2023: outside the last hour
    reg = ModelRegistry(tmp_path / "registry")
    data = Interactions.from_events(events, EventSettings().weights)
    ModelBundle.train(data, create("popular")).save(tmp_path / "popular")
    reg.deploy(reg.publish(tmp_path / "popular"))
    now = datetime.now(UTC)
    records = [
        {
            "event_id": f"live{n}",
            "user_id": "u000",
            "item_id": "i000",
            "event_type": "view",
            "timestamp": (now - timedelta(minutes=ago)).isoformat(),
        }
        for n, ago in enumerate(MINUTES_AGO)
    ]
    frame, rejected = validate_events(records, EventSettings())
    assert not rejected
    store = SQLiteStore(tmp_path / "s.sqlite")
    store.append(frame)
    store.add_dead_letters(
        [Rejection(i, (FieldError("item_id", f"missing {i}"),)) for i in range(3)], "/v1/events"
    )
    store.add_dead_letters(
        [
            Rejection(0, (FieldError("ts", "not a time"), FieldError("user_id", "too long"))),
            Rejection(1, (FieldError("event_type", "unknown 'zap'"),)),
        ],
        "import.csv",
    )
    _, admin = create_api_key(store, "console", ["admin", "read"])
    store.close()
    settings = Settings(
        store={"url": f"sqlite:///{tmp_path / 's.sqlite'}"}, serving={"registry": reg.root}
    )
    return settings, admin


def _traffic_quantiles(metrics_text: str) -> tuple[int, float, float]:
    """Requests, p50 and p99 (ms) of the non-admin routes, from /metrics, by hand."""
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(metrics_text):
        for s in family.samples:
            if s.name != "recsmith_http_request_duration_seconds_bucket":
                continue
            route = s.labels["route"]
            if route == "<unmatched>" or route.startswith(
                ("/v1/admin", "/console", "/metrics", "/health")
            ):
                continue
            buckets[float(s.labels["le"])] = buckets.get(float(s.labels["le"]), 0) + s.value
    bounds = sorted(buckets)
    total = buckets[float("inf")]

    def quantile(q: float) -> float:
        rank, below, lower = q * total, 0.0, 0.0
        for bound in bounds:
            if buckets[bound] >= rank:
                if bound == float("inf"):
                    return lower * 1000
                share = (rank - below) / (buckets[bound] - below)
                return (lower + (bound - lower) * share) * 1000
            below, lower = buckets[bound], bound
        raise AssertionError("unreachable")

    return int(total), quantile(0.5), quantile(0.99)


def test_the_overview_shows_the_stores_and_the_servers_figures(
    page: object, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    settings, admin = _served_shop(tmp_path)
    with live_server(settings, tmp_path) as server:
        auth = {"Authorization": f"Bearer {admin}"}
        for _ in range(7):  # traffic: 7 lists; 2 unknown paths, which are not traffic
            assert httpx.get(f"{server.base}/v1/popular?k=3", headers=auth).status_code == 200
        for _ in range(2):
            assert httpx.get(f"{server.base}/v1/nothing", headers=auth).status_code == 404
        page.goto(f"{server.base}/console")  # type: ignore[attr-defined]
        page.fill("#key", admin)  # type: ignore[attr-defined]
        page.click("#login-form button")  # type: ignore[attr-defined]
        # 4 + 3 + 1 events in the last hour; the three older ones are left out
        expect(page.locator("#ov-events")).to_contain_text("8 events")
        expect(page.locator("#ov-events")).to_contain_text("peak 4 per minute")
        bars = page.locator("#ov-events-chart rect")  # type: ignore[attr-defined]
        expect(bars).to_have_count(60)
        counts = [int(c) for c in bars.evaluate_all("rs => rs.map(r => r.dataset.count)")]
        assert [c for c in counts if c] == [4, 3, 1]  # oldest first
        assert counts.index(3) - counts.index(4) == 13 and counts.index(1) - counts.index(3) == 10
        expect(page.locator("#ov-dead")).to_have_text("5 refused records")
        latest = page.locator("#ov-dead-latest li")  # type: ignore[attr-defined]
        expect(latest).to_have_count(5)
        expect(latest.nth(0)).to_contain_text("import.csv: event_type: unknown 'zap'")
        expect(latest.nth(1)).to_contain_text("import.csv: ts: not a time; user_id: too long")
        expect(latest.nth(4)).to_contain_text("/v1/events: item_id: missing 0")

        text = httpx.get(f"{server.base}/metrics", headers=auth).text
        requests, p50, p99 = _traffic_quantiles(text)
        assert requests == 7
        shown = page.locator("#ov-latency")  # type: ignore[attr-defined]
        expect(shown).to_contain_text("over 7 requests since start")
        figures = re.fullmatch(
            r"p50 ([\d.]+) ms, p99 ([\d.]+) ms over 7 requests since start",
            shown.text_content().strip(),
        )
        assert figures is not None
        # two decimals on the page: JavaScript rounds an exact half up, Python to even
        assert float(figures[1]) == pytest.approx(p50, abs=0.0051)
        assert float(figures[2]) == pytest.approx(p99, abs=0.0051)
        expect(page.locator("#ov-variants")).to_be_visible()
