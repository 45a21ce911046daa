"""The real static sites served by a real `feedservice serve` on loopback, read by the
W3C Feed Validator (every feed, every page, RSS and Atom) and by newsboat (the full
content of every post). Each skips when its tool is absent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import LiveServer, start_server
from lxml import etree, html
from sites import SITES, expected_posts, prose_lines, require_sites, site_config
from test_newsboat import NEWSBOAT, Reader
from w3c_validate import validate

ATOM_LINK = "{http://www.w3.org/2005/Atom}link"
# The feeds' self links name the site's own base_url, not the loopback address the
# validator fetched them from: that one warning is expected, and only that one.
EXPECTED_WARNINGS = {"SelfDoesntMatchLocation"}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LiveServer]]:
    root = require_sites()
    tmp = tmp_path_factory.mktemp("live-sites")
    started: dict[str, LiveServer] = {}
    try:
        for name, settings in SITES.items():
            everything = {"name": "all", "title": "All", "topics": "*", "limit": 100}
            config = site_config(tmp, name, topic_limit=10, feeds=[everything])
            started[name] = start_server(
                root / name, config, tmp, env={"FEEDSERVICE_BASE_URL": settings["base_url"]}
            )
        yield started
    finally:
        for server in started.values():
            server.stop()


def every_document(server: LiveServer, base_url: str, fmt: str) -> list[str]:
    """Every page of every feed in `fmt`, as loopback URLs (from the OPML list, then the
    feeds' `next` links)."""
    opml = etree.fromstring(server.get(f"/feeds.opml?format={fmt}")[2])
    queue = [o.get("xmlUrl") for o in opml.iter("outline") if o.get("xmlUrl")]
    found = []
    while queue:
        url = queue.pop().replace(base_url, server.url, 1)
        found.append(url)
        status, _, body = server.get(url.removeprefix(server.url))
        assert status == 200, url
        for link in etree.fromstring(body).iter(ATOM_LINK):
            if link.get("rel") == "next":
                queue.append(link.get("href"))
    return found


@pytest.mark.parametrize("name", sorted(SITES))
def test_w3c_validator_finds_no_error_in_any_feed(
    servers: dict[str, LiveServer], name: str
) -> None:
    server, base_url = servers[name], SITES[name]["base_url"]
    urls = every_document(server, base_url, "rss") + every_document(server, base_url, "atom")
    reports = validate(urls)
    for report in reports:
        assert report["errors"] == [], report
        assert {kind for kind, _ in report["warnings"]} <= EXPECTED_WARNINGS, report
    print(f"{name}: {len(reports)} documents, 0 errors")


@pytest.mark.skipif(NEWSBOAT is None, reason="newsboat is not installed")
@pytest.mark.parametrize("name", sorted(SITES))
@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_newsboat_reads_the_full_content(
    servers: dict[str, LiveServer], name: str, fmt: str, tmp_path: Path
) -> None:
    """newsboat keeps one row per GUID in a cache, so each format gets a cache of its own."""
    feed = f"{servers[name].url}/feeds/all.{fmt}"
    reader = Reader(tmp_path, [feed])
    reader.reload()  # (asserts no error in newsboat's log)
    posts = {post.link: post for post in expected_posts(name)}
    read = dict(reader.rows("SELECT url, content FROM rss_item WHERE feedurl = ?", feed))
    assert set(read) == set(posts)
    checked = 0
    for link, content in read.items():
        text = " ".join(html.fromstring(f"<div>{content}</div>").text_content().split())
        for line in prose_lines(posts[link].body)[-2:]:  # from the end: not the summary
            assert " ".join(line.split()) in text, (link, line)
            checked += 1
    assert checked >= len(posts) // 2  # (release notes are mostly lists and links)
