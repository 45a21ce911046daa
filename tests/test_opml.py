"""OPML 2.0 subscription lists: /feeds.opml (every feed) and /topics.opml (topic feeds).

Checked against the OPML 2.0 rules (http://opml.org/spec2.opml) with lxml, then
imported into a real reader: `newsboat -i` must take every feed URL, cleanly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from conftest import article_fields, write_config, write_seed
from lxml import etree

NEWSBOAT = shutil.which("newsboat")
FEED_TYPES = {"atom": "application/atom+xml", "rss": "application/rss+xml"}


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Path]:
    seeds = tmp_path / "seeds"
    write_seed(seeds, "a.md", **article_fields(1, topics=["Robots", "Space & Time"]))
    write_seed(seeds, "b.md", **article_fields(2, topics=["Robots"], title="<b>Bold</b> & co"))
    write_seed(seeds, "c.md", **article_fields(3, topics=["Künstliche Intelligenz"]))
    config = write_config(
        tmp_path / "feeds.yaml",
        title='Feeds "quoted" & <angled>',
        base_url="http://feeds.test",
        feeds=[
            {"name": "robots", "title": "Robots & more", "topics": ["Robots"]},
            {"name": "empty", "title": "Nothing yet", "topics": ["Nobody writes this"]},
        ],
    )
    return seeds, config


def subscriptions(body: bytes) -> list[etree._Element]:
    return [outline for outline in etree.fromstring(body).iter("outline") if outline.get("xmlUrl")]


def check_opml_2(body: bytes) -> etree._Element:
    """The OPML 2.0 rules a reader depends on."""
    root = etree.fromstring(body)  # well-formed, or raise
    assert root.tag == "opml" and root.get("version") == "2.0"
    assert [child.tag for child in root] == ["head", "body"]
    head = root.find("head")
    assert head.findtext("title")
    parsedate_to_datetime(head.findtext("dateModified"))  # an RFC 822 date
    outlines = list(root.iter("outline"))
    assert outlines, "body needs at least one outline"
    for outline in outlines:
        assert outline.get("text"), "every outline needs a text attribute"
        if outline.get("type") == "rss":
            assert outline.get("xmlUrl", "").startswith(("http://", "https://"))
            assert len(outline) == 0, "a subscription has no children"
    urls = [outline.get("xmlUrl") for outline in subscriptions(body)]
    assert len(urls) == len(set(urls)), "a feed is listed twice"
    return root


@pytest.mark.parametrize("fmt", ["atom", "rss", None])
@pytest.mark.parametrize("which", ["feeds", "topics", "providers"])
def test_opml_lists_every_feed_in_the_chosen_format(
    site: tuple[Path, Path], site_factory, which: str, fmt: str | None
) -> None:
    client = site_factory(*site).client
    query = f"?format={fmt}" if fmt else ""
    response = client.get(f"/{which}.opml{query}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/x-opml; charset=utf-8"
    assert response.headers["ETag"]
    root = check_opml_2(response.data)
    fmt = fmt or "atom"  # the default
    topics = ["kunstliche-intelligenz", "robots", "space-time"]
    expected = [f"http://feeds.test/topics/{slug}.{fmt}" for slug in topics]
    providers = [f"http://feeds.test/providers/example.com.{fmt}"]
    if which == "feeds":
        configured = ["all", "robots", "empty"]
        expected = [f"http://feeds.test/feeds/{name}.{fmt}" for name in configured] + expected
        expected += providers
    elif which == "providers":
        expected = providers
    listed = subscriptions(response.data)
    assert [outline.get("xmlUrl") for outline in listed] == expected
    for outline in listed:
        feed = client.get(outline.get("xmlUrl").removeprefix("http://feeds.test"))
        assert feed.status_code == 200
        assert feed.mimetype == FEED_TYPES[fmt]
        page = client.get(outline.get("htmlUrl").removeprefix("http://feeds.test"))
        assert page.status_code == 200 and page.mimetype == "text/html"
    title = root.find("head").findtext("title")
    assert title.startswith('Feeds "quoted" & <angled>')


def test_opml_rejects_unknown_format(site: tuple[Path, Path], site_factory) -> None:
    client = site_factory(*site).client
    assert client.get("/feeds.opml?format=json").status_code == 400
    assert client.get("/topics.opml?format=%3Cscript%3E").status_code == 400


@pytest.mark.skipif(NEWSBOAT is None, reason="newsboat is not installed (apt-get install newsboat)")
@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_newsboat_imports_the_opml(
    site: tuple[Path, Path], tmp_path: Path, live_server_factory, fmt: str
) -> None:
    server = live_server_factory(*site)
    status, _, body = server.get(f"/feeds.opml?format={fmt}")
    assert status == 200
    opml = tmp_path / "feeds.opml"
    opml.write_bytes(body)
    home = tmp_path / "home"
    home.mkdir()
    urls = tmp_path / "urls"
    result = subprocess.run(
        [NEWSBOAT, "-u", str(urls), "-c", str(tmp_path / "cache.db"), "-i", str(opml)],
        env={**os.environ, "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Import of" in result.stdout and "finished" in result.stdout
    assert "error" not in (result.stdout + result.stderr).lower()
    imported = [line.split(" ", 1) for line in urls.read_text().splitlines() if line]
    expected = [outline.get("xmlUrl") for outline in subscriptions(body)]
    assert [url for url, _ in imported] == expected
    assert all(url.startswith(server.url) and url.endswith("." + fmt) for url in expected)
    tags = {url: tag for url, tag in imported}
    assert tags[f"{server.url}/feeds/robots.{fmt}"] == '"Feeds"'
    assert tags[f"{server.url}/topics/robots.{fmt}"] == '"Topics"'
