"""Subscribers' feeds on a real server (`feedservice serve`, two granian workers): the
same bytes from every worker and after a restart, read by newsboat, and valid to the
W3C feed validator (when its checkout is there)."""

from __future__ import annotations

import gzip
import http.client
from pathlib import Path

import pytest
from conftest import free_port, start_server, write_config
from test_newsboat import NEWSBOAT, Reader
from test_subscriber_feeds import ARTICLES, write_articles
from w3c_validate import validate

pytestmark = pytest.mark.timeout(300)
ASKS = 12  # requests per URL: with 2 workers, a worker is missed with odds 1 in 2,000
SHAPED = [
    "/feeds/all.atom?limit=3&topics=ai",
    "/feeds/all.atom?limit=3&page=2&topics=ai",
    "/feeds/all.rss?exclude=robots&min_quality=50",
    "/feeds/all.json?provider=news.example&since=2021-03-04T00:00:00Z",
    "/topics/ai.rss?all=machine-learning",
    "/feeds/all.atom?topics=nothing-like-it",
    "/providers/news.example.atom",
    "/providers/example.com.rss",
    "/search.atom?q=robots",
    "/search.rss?q=ocean+-news",
    "/feeds/all/?min_quality=60&topics=ai,robots",
    "/search/?q=robots",
]


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    seeds = tmp_path / "seeds"
    write_articles(seeds)
    config = write_config(tmp_path / "feeds.yaml", title="Acme", websub_hub="https://hub.test/")
    return seeds, config


def answers(server, url: str) -> dict[str, tuple[int, str, str, bytes]]:  # type: ignore[no-untyped-def]
    """The one answer every worker gives to `url` (fails if two differ)."""
    found = set()
    for _ in range(ASKS):
        status, headers, body = server.get(url, headers={"Accept-Encoding": "gzip"})
        found.add((status, headers.get("ETag", ""), headers.get("Last-Modified", ""), body))
    assert len(found) == 1, f"workers disagree on {url}"
    return found.pop()


def test_workers_and_a_restart_give_the_same_bytes(files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    seeds, config = files
    port, state = free_port(), ("--state-dir", str(tmp_path / "state"))
    server = start_server(seeds, config, tmp_path, workers=2, port=port, extra_args=state)
    try:
        first = {url: answers(server, url) for url in SHAPED}
        asked = {"If-None-Match": first[SHAPED[0]][1], "Accept-Encoding": "gzip"}
        assert server.get(SHAPED[0], headers=asked)[0] == 304
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/topics/AI.rss?topics=Robots")  # (urllib would follow it)
        moved = connection.getresponse()
        assert moved.status == 301
        assert moved.headers["Location"] == f"{server.url}/topics/ai.rss?topics=robots"
        connection.close()
    finally:
        server.stop()
    assert all(answer[0] == 200 for answer in first.values()), first
    assert gzip.decompress(first[SHAPED[0]][3]).count(b"<entry>") == 3
    again = start_server(seeds, config, tmp_path, workers=2, port=port, extra_args=state)
    try:
        assert {url: answers(again, url) for url in SHAPED} == first
    finally:
        again.stop()


@pytest.mark.skipif(NEWSBOAT is None, reason="newsboat is not installed (apt-get install newsboat)")
def test_newsboat_subscribes_to_a_filtered_feed(files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """newsboat keeps one row per GUID in a cache: each feed gets a cache of its own."""
    seeds, config = files
    server = start_server(seeds, config, tmp_path, workers=1)
    feeds = {
        "/feeds/all.rss?exclude=robots&topics=ai": {1, 2, 7, 9},
        "/providers/news.example.atom?min_quality=70": {3, 4, 9},
        "/search.atom?q=robots": {3, 6, 9},
    }
    try:
        for number, (path, expected) in enumerate(feeds.items()):
            assert read_with_newsboat(server.url + path, tmp_path / f"reader-{number}") == expected
    finally:
        server.stop()


def read_with_newsboat(url: str, directory: Path) -> set[int]:
    """The article numbers newsboat stores after one reload of `url`."""
    reader = Reader(directory, [url])
    reader.reload()  # (asserts no error in newsboat's log)
    rows = reader.rows("SELECT url FROM rss_item WHERE feedurl = ?", url)
    assert {int(row[0].rsplit("/", 1)[1]) for row in rows} <= set(ARTICLES)
    return {int(row[0].rsplit("/", 1)[1]) for row in rows}


def test_w3c_validator_finds_no_error_or_warning_in_shaped_feeds(files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    seeds, config = files
    server = start_server(seeds, config, tmp_path, workers=1)
    urls = [server.url + url for url in SHAPED if not url.endswith("/") and ".json" not in url]
    urls = [url for url in urls if "/?" not in url]
    try:
        reports = validate(urls)
    finally:
        server.stop()
    for report in reports:
        assert report["errors"] == [] and report["warnings"] == [], report
