"""A real browser on the HTML pages: system Chromium driven by Playwright.

The pages are loaded from a real `feedservice serve` on a loopback port, with
the real-world corpus plus the bundled seeds. Article thumbnails point at the
internet, which tests never reach: Playwright answers every non-loopback
request with a stand-in image, so a console error can only come from our own
page (a CSP violation, a missing stylesheet, a broken link). Screenshots are
kept in artifacts/ for people to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import feedparser
import pytest
import yaml
from conftest import REPO, realworld_and_samples
from lxml import etree

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--mute-audio",
]
FEED_TYPES = {
    "application/rss+xml": "application/rss+xml; charset=utf-8",
    "application/atom+xml": "application/atom+xml; charset=utf-8",
    "application/feed+json": "application/feed+json; charset=utf-8",
    "text/x-opml": "text/x-opml; charset=utf-8",
}
# A 1×1 transparent GIF: the stand-in for every image on the internet.
PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)

if not CHROMIUM.exists():
    pytest.skip(
        "/usr/bin/chromium is not installed (apt-get install chromium)", allow_module_level=True
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="python playwright is not installed")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A live server over realworld + bundled seeds; topic pages of 10 items, so they page."""
    from conftest import start_server

    tmp = tmp_path_factory.mktemp("browser")
    seeds = realworld_and_samples(tmp)
    config = yaml.safe_load((REPO / "config" / "feeds.yaml").read_text())
    config["topic_limit"] = 10
    config_path = tmp / "feeds.yaml"
    config_path.write_text(yaml.safe_dump(config))
    server = start_server(seeds, config_path, tmp)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


def open_page(browser: Any, url: str, *, dark: bool = False) -> tuple[Any, list[str]]:
    """Load `url`; answer off-host requests with a pixel; collect console errors."""
    context = browser.new_context(
        viewport={"width": 1000, "height": 800}, color_scheme="dark" if dark else "light"
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))

    def route(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            route.fulfill(status=200, content_type="image/gif", body=PIXEL)

    page.route("**/*", route)
    response = page.goto(url, wait_until="load")
    assert response is not None and response.status == 200
    return page, errors


def check_page(site: Any, browser: Any, path: str, shot: str) -> None:
    page, errors = open_page(browser, site.url + path)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)

    alternates = page.eval_on_selector_all(
        "link[rel=alternate]", "links => links.map(l => [l.type, l.href, l.title])"
    )
    assert {kind for kind, _, _ in alternates} == {
        "application/rss+xml",
        "application/atom+xml",
        "application/feed+json",
    }
    assert all(title for _, _, title in alternates)

    typed_links = page.eval_on_selector_all(
        "a[type], link[rel=alternate]", "links => links.map(l => [l.type, l.href])"
    )
    assert len(typed_links) >= 6
    for kind, href in typed_links:
        answer = page.request.get(href)
        assert answer.status == 200, href
        assert answer.headers["content-type"] == FEED_TYPES[kind], href

    own_links = page.eval_on_selector_all(
        "a[href]", "links => links.map(l => l.href).filter(h => h.startsWith(location.origin))"
    )
    for href in set(own_links) - {href for _, href in typed_links}:
        answer = page.request.get(href)
        assert answer.status == 200, href
        assert answer.headers["content-type"].startswith("text/html"), href

    assert page.eval_on_selector_all("img:not([alt])", "images => images.length") == 0
    assert page.locator("h1").count() == 1
    assert page.get_attribute("html", "lang") == "en"
    stylesheet = page.evaluate("getComputedStyle(document.body).maxWidth")
    assert stylesheet != "none", "the stylesheet did not apply"
    page.context.close()
    assert errors == [], errors


def biggest_topic(site: Any) -> str:
    """The slug of the topic with the most articles, from the server's own OPML and feeds."""
    opml = etree.fromstring(site.get("/topics.opml?format=rss")[2])
    paths = [urlsplit(o.get("xmlUrl")).path for o in opml.iter("outline") if o.get("xmlUrl")]
    sizes = {path: len(feedparser.parse(site.get(path)[2]).entries) for path in paths}
    return max(paths, key=lambda path: (sizes[path], path)).split("/")[2].removesuffix(".rss")


def test_index_page(site: Any, browser: Any) -> None:
    check_page(site, browser, "/", "index")


def test_topic_page(site: Any, browser: Any) -> None:
    slug = biggest_topic(site)
    page, errors = open_page(browser, f"{site.url}/topics/{slug}/")
    items = page.locator("ol.items > li").count()
    assert items == 10  # the topic limit: the newest page
    assert page.locator("nav.pager a[rel=next]").count() == 1
    copy = page.locator("#feed-url")
    assert copy.get_attribute("readonly") is not None
    assert copy.input_value() == f"{site.url}/topics/{slug}.atom"
    page.context.close()
    assert errors == []
    check_page(site, browser, f"/topics/{slug}/", "topic")
    check_page(site, browser, f"/topics/{slug}/?page=2", "topic-page-2")


def test_configured_feed_page_dark(site: Any, browser: Any) -> None:
    check_page(site, browser, "/feeds/all/", "feed-all")
    page, errors = open_page(browser, f"{site.url}/feeds/all/", dark=True)
    page.screenshot(path=str(ARTIFACTS / "feed-all-dark.png"), full_page=False)
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background != "rgb(255, 255, 255)"
    page.context.close()
    assert errors == []
