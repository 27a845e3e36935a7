"""``/``, ``/docs`` and ``/redoc`` on a machine without internet.

The docs pages are rendered by a real headless Chromium against a real server, with every host
name but the server's made unresolvable: a page that loads anything from a CDN renders no
operations. The oracle for what must appear is the server's own OpenAPI document (its paths),
and for the version the project's ``pyproject.toml``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from live_server import live_server

from recsmith.config import Settings

ROOT = Path(__file__).resolve().parents[2]
#: An absolute URL, a scheme-relative one or an absolute path.
_URL = re.compile(r"(?:[a-z][a-z0-9+.-]*:)?//[^'\"\s]+|/[^'\"\s]*")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class _AssetUrls(HTMLParser):
    """Every URL a page names: in attributes (``src``, ``href``, ReDoc's ``spec-url``) and in its
    inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for _, value in attrs if value and _URL.fullmatch(value)]
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:  # e.g. SwaggerUIBundle({url: '/openapi.json', ...})
            self.urls += re.findall(rf"""['"]({_URL.pattern})['"]""", data)


def asset_urls(html: str) -> list[str]:
    parser = _AssetUrls()
    parser.feed(html)
    return parser.urls


def test_front_door_names_the_server_and_links_that_answer(client: TestClient) -> None:
    reply = client.get("/")
    assert reply.status_code == 200
    body = reply.json()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert body["name"] == project["name"]
    assert body["version"] == project["version"]
    assert set(body["links"]) == {"docs", "redoc", "openapi", "health"}
    assert client.get(body["links"]["openapi"]).json()["info"]["title"] == "recsmith"
    assert client.get(body["links"]["health"]).json()["checks"]["model"] is True
    for page in ("docs", "redoc"):
        assert client.get(body["links"][page]).headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_name_no_other_host_and_every_asset_is_served(
    client: TestClient, page: str
) -> None:
    html = client.get(page).text
    urls = asset_urls(html)
    assert len(urls) >= 3  # the script, the icon, the OpenAPI document (and Swagger's stylesheet)
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{page} loads {url} from another host"
        answer = client.get(urljoin(page, url))
        assert answer.status_code == 200 and answer.content, url


def _render(url: str) -> str:
    """The DOM of ``url`` after its scripts ran, in a Chromium that can resolve no host name but
    the loopback address (a CDN request fails as it would offline)."""
    # fails rather than skips without it: a check that is skipped cannot fail
    assert CHROMIUM is not None, "needs chromium: apt-get install chromium (.ci/run does)"
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",  # tests run as root in CI
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=20000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.slow
def test_docs_render_operations_offline_in_a_browser(settings: Settings, tmp_path: Path) -> None:
    with live_server(settings, tmp_path) as server:
        paths = list(httpx.get(f"{server.base}/openapi.json", timeout=10).json()["paths"])
        for page in ("/docs", "/redoc"):
            dom = _render(server.base + page)
            shown = [path for path in paths if path in dom]
            assert "/v1/events" in shown, f"{page} rendered no operations:\n{dom[:2000]}"
            assert len(shown) == len(paths), f"{page} lacks {sorted(set(paths) - set(shown))}"
