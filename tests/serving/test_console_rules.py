"""The console's Rules page in a real browser (Debian's chromium, as ``test_console``) against a
real server serving a pipeline: the pipeline's rules shown, a refused file names the rule and
field, a TOML file is taken as the CLI takes it (a rule matching no item warned about), a saved
one changes what the Preview page lists, and the pipeline's rules come back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from live_server import live_server
from rules_fixtures import category_of, rules_pipeline
from test_console import _shot, page  # noqa: F401  (the browser fixture)

from recsmith.config import Settings
from recsmith.pipeline.artifact import save_pipeline
from recsmith.serving import create_api_key
from recsmith.store.sqlite import SQLiteStore

CELLS = "#preview-list tbody tr td:nth-child(2)"
#: Leaves out category c0 (as the JSON file the test validates first), and boosts "C0": no item
#: has it (categories are lower case), so it changes nothing and is warned about.
NO_C0_TOML = """
[[rerank.rules]]
type = "filter"
property = "category"
in = ["c0"]
negate = true

[[rerank.rules]]
type = "boost"
property = "category"
equals = "C0"
factor = 2.0
"""


def _listed(browser: Any) -> list[str]:
    return browser.locator(CELLS).all_inner_texts()  # type: ignore[no-any-return]


def _api_list(base: str, key: str) -> list[str]:
    """u1's list of 8 as the Preview page asks for it."""
    response = httpx.get(
        f"{base}/v1/users/u1/recommendations?k=8", headers={"X-API-Key": key}, timeout=10
    )
    assert response.status_code == 200, response.text
    return [item["item_id"] for item in response.json()["items"]]


def test_the_rules_page_changes_the_preview(
    page: Any,  # noqa: F811
    tmp_path: Path,
    training_records: list[dict[str, Any]],
) -> None:
    from playwright.sync_api import expect

    save_pipeline(
        rules_pipeline(
            training_records,
            rerank={"rules": [{"type": "exclude", "items": ["i0"]}]},
        ),
        tmp_path / "model",
    )
    store = SQLiteStore(tmp_path / "s.sqlite")
    _, admin = create_api_key(store, "merchandiser", ["admin"])
    store.close()
    settings = Settings(
        store={"url": f"sqlite:///{tmp_path / 's.sqlite'}"},
        serving={"model_dir": tmp_path / "model"},
    )
    with live_server(settings, tmp_path) as server:
        page.goto(f"{server.base}/console")
        page.fill("#key", admin)
        page.click("#login-form button")
        page.click("nav a[data-page=preview]")
        page.fill("#preview-user", "u1")
        page.fill("#preview-k", "8")
        page.click("#preview-form button")
        expect(page.locator("#preview-list tbody tr")).to_have_count(8)
        before = _listed(page)
        assert "c0" in {category_of(i) for i in before}

        page.click("nav a[data-page=rules]")
        expect(page.locator("#rules-meta")).to_contain_text("Never set")
        assert json.loads(page.locator("#rules-pipeline").inner_text())["rerank"]["rules"] == [
            {"type": "exclude", "items": ["i0"]}
        ]
        bad = {"rerank": {"rules": [{"type": "pin", "item": "i1", "position": 0}]}}
        page.fill("#rules-text", json.dumps(bad))
        page.click("#rules-validate")
        expect(page.locator("#rules-errors")).to_contain_text("rerank.rules[0].position")
        page.fill("#rules-text", "{not json")
        page.click("#rules-save")
        expect(page.locator("#rules-errors")).to_contain_text("body: not valid JSON")
        page.fill("#rules-text", "[[rerank.rules]\ntype = 'pin'")
        page.click("#rules-save")
        expect(page.locator("#rules-errors")).to_contain_text("body: not valid TOML")
        no_c0 = {
            "rerank": {
                "rules": [{"type": "filter", "property": "category", "in": ["c0"], "negate": True}]
            }
        }
        page.fill("#rules-text", json.dumps(no_c0))
        page.click("#rules-validate")
        expect(page.locator("#rules-message")).to_contain_text("Valid")
        expect(page.locator("#rules-warnings li")).to_have_count(0)
        # the same file as TOML, with a boost on a category no item has: saved, and warned about
        page.fill("#rules-text", NO_C0_TOML)
        page.click("#rules-save")
        expect(page.locator("#rules-message")).to_contain_text("Saved as version 1")
        expect(page.locator("#rules-warnings")).to_contain_text(
            "rerank.rules[1].equals: this boost on 'category' matches no item"
        )
        assert page.locator("#rules-errors li").count() == 0
        assert json.loads(page.locator("#rules-text").input_value())["rerank"]["rules"][0][
            "in"
        ] == ["c0"]  # shown back as the JSON the server stored
        expect(page.locator("#rules-meta")).to_contain_text("set by merchandiser")
        _shot(page, "rules")

        # what the page must now show, asked of the API (the old rows stay until the new arrive)
        after = _api_list(server.base, admin)
        assert after != before and not [i for i in after if category_of(i) == "c0"]
        page.click("nav a[data-page=preview]")
        page.click("#preview-form button")
        expect(page.locator(CELLS)).to_have_text(after)
        # the live file replaced the pipeline's rules: its exclusion of i0 no longer holds
        assert [i for i in before if category_of(i) != "c0"] == after[
            : len([i for i in before if category_of(i) != "c0"])
        ]

        page.click("nav a[data-page=rules]")
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#rules-reset")
        expect(page.locator("#rules-message")).to_contain_text("Version 2: the pipeline's rules")
        expect(page.locator("#rules-history tbody tr")).to_have_count(2)
        assert _api_list(server.base, admin) == before
        page.click("nav a[data-page=preview]")
        page.click("#preview-form button")
        expect(page.locator(CELLS)).to_have_text(before)
