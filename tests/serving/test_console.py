"""The web console in a real browser (Debian's chromium driven by Playwright) against a real
server: log in, open every page, deploy and roll back a release, preview a user's list.

CI installs chromium (``.ci/run``) and requires it (``RECSMITH_REQUIRE_CHROMIUM=1``); elsewhere
the browser test skips without it. Screenshots of each page land in ``$RECSMITH_CONSOLE_SHOTS``
when it is set (how the README's pictures were made).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from live_server import live_server

from recsmith.bundle import ModelBundle
from recsmith.config import EventSettings, Settings
from recsmith.events.schema import Item
from recsmith.events.validate import validate_events
from recsmith.features.interactions import Interactions
from recsmith.governance.releases import ModelRegistry
from recsmith.models.registry import create
from recsmith.monitoring.signals import SIGNALS
from recsmith.pipeline.artifact import save_pipeline
from recsmith.serving import create_api_key, create_app
from recsmith.store.sqlite import SQLiteStore
from recsmith.testing.device_shop import (
    device_shop_events,
    device_shop_pipeline,
    replay_latest,
)
from recsmith.testing.recommender import checkerboard_events

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def shop(tmp_path: Path) -> tuple[Settings, ModelRegistry, list[str], dict[str, str]]:
    events = checkerboard_events()
    data = Interactions.from_events(events, EventSettings().weights)
    reg = ModelRegistry(tmp_path / "registry")
    versions = []
    for name in ("popular", "itemknn"):
        ModelBundle.train(data, create(name)).save(tmp_path / name)
        versions.append(reg.publish(tmp_path / name))
        reg.deploy(versions[-1])
    store = SQLiteStore(tmp_path / "s.sqlite")
    stamped = events.drop(columns=["ts"]).assign(
        timestamp=pd.to_datetime(events["ts"], unit="us", utc=True).dt.strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
    )
    frame, rejected = validate_events(stamped.to_dict("records"), EventSettings())
    assert not rejected and len(frame) == len(events)
    store.append(frame)
    # a catalogue in two categories, by the parity of the item's number (the fairness page's groups)
    store.upsert_items(
        [Item(item_id=i, categories=[_parity(i)]) for i in sorted(set(events["item_id"]))]
    )
    _, admin = create_api_key(store, "console", ["admin"])
    _, reader = create_api_key(store, "reader", ["read"])
    store.close()
    settings = Settings(
        store={"url": f"sqlite:///{tmp_path / 's.sqlite'}"},
        serving={"registry": reg.root, "reload_interval_s": 0.2},
        monitor={"window": "3650d"},
    )
    return settings, reg, versions, {"admin": admin, "read": reader}


@pytest.fixture
def page(tmp_path: Path) -> Iterator[object]:
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


def _parity(item_id: str) -> str:
    return "even" if int(item_id.lstrip("i")) % 2 == 0 else "odd"


def _shot(page: object, name: str) -> None:
    folder = os.environ.get("RECSMITH_CONSOLE_SHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"console-{name}.png"), full_page=True)  # type: ignore[attr-defined]


def test_the_console_in_a_browser(
    shop: tuple[Settings, ModelRegistry, list[str], dict[str, str]],
    page: object,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    settings, reg, (v1, v2), keys = shop
    with live_server(settings, tmp_path) as server:
        page.goto(f"{server.base}/console")  # type: ignore[attr-defined]
        # a key without the admin scope is refused, and the form says so
        page.fill("#key", keys["read"])
        page.click("#login-form button")
        expect(page.locator("#login-error")).to_contain_text("admin")
        page.fill("#key", keys["admin"])
        page.click("#login-form button")
        expect(page.locator("#ov-serving")).to_contain_text(v2)
        expect(page.locator("#ov-monitor")).to_contain_text("events in the last day")
        _shot(page, "overview")

        page.click("nav a[data-page=releases]")
        expect(page.locator("#rel-current")).to_have_text(v2)
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#rollback")
        expect(page.locator("#rel-message")).to_contain_text(f"{v1} is current (was {v2})")
        assert reg.current() == v1
        expect(page.locator("#rel-serving")).to_have_text(v1)
        # deploy the newer one back, from its row; a dismissed confirmation does nothing
        page.once("dialog", lambda dialog: dialog.dismiss())
        page.click(f"button[data-version='{v2}']")
        assert reg.current() == v1
        page.once("dialog", lambda dialog: dialog.accept())
        page.click(f"button[data-version='{v2}']")
        expect(page.locator("#rel-current")).to_have_text(v2)
        assert reg.current() == v2
        _shot(page, "releases")

        page.click("nav a[data-page=drift]")
        page.fill("#drift-since", "3650d")
        page.click("#drift-form button")
        expect(page.locator("#drift-table tbody tr")).to_have_count(len(SIGNALS))  # one a row
        expect(page.locator("#drift-summary")).to_contain_text(v2)
        # a single model has no ranker: no feature rows, and the page says why
        expect(page.locator("#drift-features tbody tr")).to_have_count(0)
        expect(page.locator("#drift-features-note")).to_contain_text("No feature PSI: not recorded")
        _shot(page, "drift")

        page.click("nav a[data-page=preview]")
        page.fill("#preview-user", "u001")
        page.fill("#preview-k", "5")
        page.click("#preview-form button")
        expect(page.locator("#preview-list tbody tr")).to_have_count(5)
        expect(page.locator("#preview-meta")).to_contain_text(v2)
        history = page.locator("#preview-history li").all_inner_texts()
        listed = page.locator("#preview-list tbody tr td:nth-child(2)").all_inner_texts()
        assert history and not set(history) & set(listed)  # lists leave out what they had
        _shot(page, "preview")

        # the one list served so far (the preview's), grouped by category: its five slots
        page.click("nav a[data-page=fairness]")
        page.fill("#fairness-since", "3650d")
        time.sleep(1.5)  # the decision writer stores lists within a second
        page.click("#fairness-form button")
        expect(page.locator("#fair-lists")).to_contain_text("1 (since 3650d, groups: category)")
        shares = {p: sum(_parity(i) == p for i in listed) / 5 for p in ("even", "odd")}
        rows = page.locator("#fair-groups tbody tr")
        expect(rows).to_have_count(sum(v > 0 for v in shares.values()))
        shown = dict(
            zip(
                rows.locator("td:nth-child(1)").all_inner_texts(),
                rows.locator("td:nth-child(2)").all_inner_texts(),
                strict=True,
            )
        )
        assert shown == {g: f"{100 * v:.1f} %" for g, v in shares.items() if v > 0}
        _shot(page, "fairness")


def test_the_console_api_asks_for_an_admin_key(
    shop: tuple[Settings, ModelRegistry, list[str], dict[str, str]],
) -> None:
    settings, reg, (v1, v2), keys = shop
    with TestClient(create_app(settings)) as client:
        assert client.get("/console").status_code == 200  # the page holds no data
        assert client.get("/console/assets/console.js").status_code == 200
        assert client.get("/console/assets/nothing.js").status_code == 404
        for headers in ({}, {"Authorization": f"Bearer {keys['read']}"}):
            assert client.get("/v1/admin/releases", headers=headers).status_code in (401, 403)
            assert client.post("/v1/admin/rollback", headers=headers).status_code in (401, 403)
        admin = {"Authorization": f"Bearer {keys['admin']}"}
        listed = client.get("/v1/admin/releases", headers=admin).json()
        assert listed["current"] == v2 and listed["history"] == [v1]
        assert [r["version"] for r in listed["releases"]] == [v1, v2]  # oldest first
        back = client.post("/v1/admin/rollback", headers=admin)
        assert back.json() == {"version": v1, "previous": v2}
        assert client.post("/v1/admin/rollback", headers=admin).status_code == 409
        missing = client.post("/v1/admin/releases/nope/deploy", headers=admin)
        assert missing.status_code == 404 and "nope" in missing.json()["detail"]
        again = client.post(f"/v1/admin/releases/{v2}/deploy", headers=admin)
        assert again.json() == {"version": v2, "previous": v1} and reg.current() == v2
        report = client.get("/v1/admin/monitor?since=3650d", headers=admin).json()
        assert report["version"] == v2 and len(report["signals"]) == len(SIGNALS)
        bad = client.get("/v1/admin/fairness?item_groups=brand", headers=admin)
        assert bad.status_code == 422 and "item_groups" in bad.text
        audit = [
            (r.action, r.target, r.outcome, r.key_name)
            for r in client.app.state.runtime.store.scan_audit()  # type: ignore[attr-defined]
            if r.action in ("deploy", "rollback")
        ]
        assert audit == [
            ("rollback", v1, "ok", "console"),
            ("rollback", "", "no earlier deployed release to go back to", "console"),
            ("deploy", v2, "ok", "console"),
        ]
        history = client.get("/v1/admin/users/u001/history", headers=admin).json()
        store = SQLiteStore(Path(settings.store.url.removeprefix("sqlite:///")))
        assert history["items"] and sorted(history["items"]) == sorted(store.user_items("u001"))
        store.close()


def test_the_drift_page_lists_each_ranker_feature_s_psi(page: object, tmp_path: Path) -> None:
    """A pipeline served all its traffic from one device: the drift page's feature table puts
    ``device`` first at alert level, the others ok (values: ``test_feature_drift_served``)."""
    from playwright.sync_api import expect

    events = device_shop_events()
    pipeline = device_shop_pipeline(events)
    save_pipeline(pipeline, tmp_path / "pipe")
    reg = ModelRegistry(tmp_path / "registry")
    reg.deploy(reg.publish(tmp_path / "pipe"))
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    replay_latest(pipeline, events, url, device="mobile")
    store = SQLiteStore(tmp_path / "s.sqlite")
    _, admin = create_api_key(store, "console", ["admin"])
    store.close()
    settings = Settings(store={"url": url}, serving={"registry": reg.root})
    with live_server(settings, tmp_path) as server:
        page.goto(f"{server.base}/console")  # type: ignore[attr-defined]
        page.fill("#key", admin)  # type: ignore[attr-defined]
        page.click("#login-form button")  # type: ignore[attr-defined]
        page.click("nav a[data-page=drift]")  # type: ignore[attr-defined]
        page.fill("#drift-since", "1d")  # type: ignore[attr-defined]
        page.click("#drift-form button")  # type: ignore[attr-defined]
        rows = page.locator("#drift-features tbody tr")  # type: ignore[attr-defined]
        expect(rows).to_have_count(len(pipeline.manifest["feature_profile"]["names"]))
        expect(rows.first.locator("td").first).to_have_text("device")
        expect(rows.first.locator("td:nth-child(3)")).to_have_text("alert")
        expect(rows.nth(1).locator("td:nth-child(3)")).to_have_text("ok")
        expect(page.locator("#drift-features-note")).to_have_text("")  # type: ignore[attr-defined]
        _shot(page, "drift-features")
