"""The console's Experiments page in a real browser (Debian's chromium driven by Playwright),
and the admin routes it reads: the page's units per variant are checked against the variants the
recommendation responses themselves named."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from live_server import live_server
from test_console import page, shop  # noqa: F401  (fixtures)

from recsmith.bundle import ModelBundle
from recsmith.config import Settings
from recsmith.experiments.registry import ExperimentRegistry
from recsmith.experiments.spec import Experiment, Variant
from recsmith.governance.releases import ModelRegistry
from recsmith.serving import create_app

Shop = tuple[Settings, ModelRegistry, list[str], dict[str, str]]
USERS = [f"u{i:03d}" for i in range(24)]


def _start(reg: ModelRegistry, v1: str, v2: str) -> None:
    variants = (Variant("control", v1, 1.0), Variant("treatment", v2, 3.0))
    ExperimentRegistry(reg.root).start(Experiment("ab", variants, salt="ab:salt"))


def _serve_users(base: str, key: str) -> dict[str, int]:
    """Ask for every user's list; units per variant, as the responses name them."""
    units: dict[str, int] = {}
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client:
        for user in USERS:
            body = client.get(f"/v1/users/{user}/recommendations?k=5").json()
            units[body["variant"]] = units.get(body["variant"], 0) + 1
    return units


def test_the_experiments_page_in_a_browser(shop: Shop, page: object, tmp_path: Path) -> None:  # noqa: F811
    from playwright.sync_api import expect

    settings, reg, (v1, v2), keys = shop
    _start(reg, v1, v2)
    with live_server(settings, tmp_path) as server:
        units = _serve_users(server.base, keys["read"])
        assert set(units) == {"control", "treatment"}
        time.sleep(1.5)  # the decision writer stores lists within a second
        page.goto(f"{server.base}/console")  # type: ignore[attr-defined]
        page.fill("#key", keys["admin"])  # type: ignore[attr-defined]
        page.click("#login-form button")  # type: ignore[attr-defined]
        page.click("nav a[data-page=experiments]")  # type: ignore[attr-defined]
        row = page.locator("#exp-table tbody tr")  # type: ignore[attr-defined]
        expect(row).to_have_count(1)
        expect(row.locator("td").nth(1)).to_have_text("running")
        expect(row.locator("td").nth(2)).to_have_text(f"control={v1} (25 %), treatment={v2} (75 %)")
        page.click("button[data-experiment=ab]")  # type: ignore[attr-defined]
        expect(page.locator("#exp-title")).to_have_text("ab (control: control)")  # type: ignore[attr-defined]
        rows = page.locator("#exp-variants tbody tr")  # type: ignore[attr-defined]
        expect(rows).to_have_count(2)
        shown = dict(
            zip(
                rows.locator("td:nth-child(1)").all_inner_texts(),
                rows.locator("td:nth-child(2)").all_inner_texts(),
                strict=True,
            )
        )
        assert shown == {v: str(n) for v, n in units.items()}
        ctr = rows.locator("td:nth-child(4)").all_inner_texts()
        assert all(text.startswith("0.000 [") for text in ctr)  # no clicks: 0 and an interval
        expect(page.locator("#exp-guardrails tbody tr").first).to_be_visible()  # type: ignore[attr-defined]
        expect(page.locator("#exp-srm")).to_contain_text("control 25 %, treatment 75 %")  # type: ignore[attr-defined]


def test_the_experiment_routes(shop: Shop, tmp_path: Path) -> None:  # noqa: F811
    settings, reg, (v1, v2), keys = shop
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/admin/experiments", headers=admin).json() == []
        _start(reg, v1, v2)
        (listed,) = client.get("/v1/admin/experiments", headers=admin).json()
        assert listed["name"] == "ab" and listed["status"] == "running"
        shares = [(v["name"], v["target"], v["share"]) for v in listed["variants"]]
        assert shares == [("control", v1, 0.25), ("treatment", v2, 0.75)]
        report = client.get("/v1/admin/experiments/ab/report", headers=admin).json()
        assert report["control"] == "control" and report["weights"] == {
            "control": 0.25,
            "treatment": 0.75,
        }
        missing = client.get("/v1/admin/experiments/nope/report", headers=admin)
        assert missing.status_code == 404 and "nope" in missing.json()["detail"]
        reader = {"Authorization": f"Bearer {keys['read']}"}
        assert client.get("/v1/admin/experiments", headers=reader).status_code == 403
    bare = Settings(store=settings.store.model_dump())
    with TestClient(create_app(bare)) as client:
        assert client.get("/v1/admin/experiments", headers=admin).status_code == 409


def test_the_shadow_panel_in_a_browser(shop: Shop, page: object, tmp_path: Path) -> None:  # noqa: F811
    """v2 serves; the panel starts v1 (popularity) shadowing every request, and shows the
    overlap computed here from both releases' own lists (as JavaScript's toPrecision(4) prints
    it; on the checkerboard the two releases share nothing: 0.000)."""
    from playwright.sync_api import expect

    settings, reg, (v1, _), keys = shop
    with live_server(settings, tmp_path) as server:
        page.goto(f"{server.base}/console#releases")  # type: ignore[attr-defined]
        page.fill("#key", keys["admin"])  # type: ignore[attr-defined]
        page.click("#login-form button")  # type: ignore[attr-defined]
        page.click("nav a[data-page=overview]")  # type: ignore[attr-defined]
        page.click("nav a[data-page=releases]")  # type: ignore[attr-defined]
        expect(page.locator("#shadow-status")).to_contain_text("no release shadows")  # type: ignore[attr-defined]
        page.fill("#shadow-release", v1)  # type: ignore[attr-defined]
        page.fill("#shadow-sample", "1")  # type: ignore[attr-defined]
        page.click("#shadow-form button[type=submit]")  # type: ignore[attr-defined]
        expect(page.locator("#shadow-status")).to_contain_text(f"{v1} scores 100 %")  # type: ignore[attr-defined]
        with httpx.Client(base_url=server.base) as client:
            read = {"Authorization": f"Bearer {keys['read']}"}
            served = {
                u: [
                    i["item_id"]
                    for i in client.get(f"/v1/users/{u}/recommendations?k=5", headers=read).json()[
                        "items"
                    ]
                ]
                for u in USERS[:4]
            }
        deadline = time.monotonic() + 20
        while True:
            page.click("#shadow-refresh")  # type: ignore[attr-defined]
            text = page.locator("#shadow-compared").inner_text()  # type: ignore[attr-defined]
            if text.startswith("4 ") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert text == "4 (dropped 0, failed 0, store failed 0)"
        pop = ModelBundle.load(reg.path(v1))
        shadowed = {u: [str(i) for i in pop.recommend([u], 5).item_ids[0]] for u in served}
        jaccard = sum(
            len(set(served[u]) & set(shadowed[u])) / len(set(served[u]) | set(shadowed[u]))
            for u in served
        ) / len(served)
        expect(page.locator("#shadow-jaccard")).to_have_text(f"{jaccard:#.4g}")  # type: ignore[attr-defined]
        page.click("#shadow-stop")  # type: ignore[attr-defined]
        expect(page.locator("#shadow-status")).to_contain_text("no release shadows")  # type: ignore[attr-defined]
