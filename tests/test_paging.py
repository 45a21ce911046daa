"""Paging (RFC 5005 paged feeds): `?page=N`, first/previous/next/last links, JSON `next_url`.

A topic of 120 articles with `topic_limit: 50` has pages of 50, 50 and 20.
Walking `next` from page 1, in every format, must visit each catalog item of
the topic exactly once and in catalog order; the truth comes from a Loader of its
own, over a store in a temp dir, reading the same files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Site, article_fields, write_config, write_seed
from consumers import load_truth, read_feed
from lxml import etree, html

ATOM_LINK = "{http://www.w3.org/2005/Atom}link"
BASE = "http://feeds.test"
PAGING_RELS = ("first", "previous", "next", "last")
Fetch = Callable[[str], tuple[int, bytes]]


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Path]:
    seeds = tmp_path / "seeds"
    for n in range(120):
        when = f"2021-{1 + n // 28:02d}-{1 + n % 28:02d}T{n % 24:02d}:00:00Z"
        write_seed(
            seeds,
            f"robot-{n:03d}.md",
            **article_fields(n, topics=["Robots"], publishedDateTime=when),
        )
    for n in range(200, 205):
        write_seed(seeds, f"space-{n}.md", **article_fields(n, topics=["Space"]))
    config = write_config(
        tmp_path / "feeds.yaml",
        base_url=BASE,
        topic_limit=50,
        feeds=[{"name": "robots", "title": "Robots", "topics": ["Robots"], "limit": 30}],
    )
    return seeds, config


@pytest.fixture
def served(site: tuple[Path, Path], site_factory) -> Site:
    return site_factory(*site)


@pytest.fixture
def fetch(served: Site) -> Fetch:
    def get(path: str) -> tuple[int, bytes]:
        response = served.get(path.removeprefix(BASE))
        return response.status_code, response.data

    return get


def truth(site: tuple[Path, Path], kind: str, name: str) -> list[str]:
    """The feed's item ids, newest first, from a Loader of its own over the same files."""
    seeds, config = site
    catalog, _ = load_truth(seeds, config, seeds.parent)
    return [entry.identity for entry in catalog.feeds[f"{kind}/{name}"].entries]


def paging_links(body: bytes, fmt: str) -> dict[str, str]:
    if fmt == "json":
        document = json.loads(body)
        return {"next": document["next_url"]} if "next_url" in document else {}
    root = etree.fromstring(body)
    links = root.iter(ATOM_LINK) if fmt == "rss" else root.findall(ATOM_LINK)
    return {link.get("rel"): link.get("href") for link in links if link.get("rel") in PAGING_RELS}


def url(path: str, fmt: str, number: int) -> str:
    return f"{BASE}{path}.{fmt}" + (f"?page={number}" if number > 1 else "")


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_first_previous_next_last_links(fetch: Fetch, fmt: str) -> None:
    path = "/topics/robots"
    expected = {
        1: {"first": 1, "next": 2, "last": 3},
        2: {"first": 1, "previous": 1, "next": 3, "last": 3},
        3: {"first": 1, "previous": 2, "last": 3},
    }
    for number, rels in expected.items():
        status, body = fetch(url(path, fmt, number))
        assert status == 200
        links = paging_links(body, fmt)
        assert links == {rel: url(path, fmt, target) for rel, target in rels.items()}
        root = etree.fromstring(body)
        selves = [link for link in root.iter(ATOM_LINK) if link.get("rel") == "self"]
        assert [link.get("href") for link in selves] == [url(path, fmt, number)]
        assert all(
            link.get("type") == f"application/{fmt}+xml"
            for link in root.iter(ATOM_LINK)
            if link.get("rel") in PAGING_RELS
        )


def test_json_feed_next_url(fetch: Fetch) -> None:
    for number, following in ((1, 2), (2, 3), (3, None)):
        status, body = fetch(url("/topics/robots", "json", number))
        assert status == 200
        document, items = read_feed(body, "json")
        assert document.get("next_url") == (
            url("/topics/robots", "json", following) if following else None
        )
        assert len(items) == (20 if number == 3 else 50)
        assert document["feed_url"] == url("/topics/robots", "json", number)


def test_single_page_feed_has_no_paging_links(fetch: Fetch) -> None:
    for fmt in ("atom", "rss", "json"):
        status, body = fetch(url("/topics/space", fmt, 1))
        assert status == 200 and paging_links(body, fmt) == {}


@pytest.mark.parametrize("path", ["/topics/robots", "/feeds/robots", "/feeds/all"])
@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
def test_walking_next_visits_every_item_once(
    site: tuple[Path, Path], fetch: Fetch, path: str, fmt: str
) -> None:
    kind, name = path.strip("/").split("/")
    seen: list[str] = []
    next_url: str | None = url(path, fmt, 1)
    pages = 0
    while next_url:
        status, body = fetch(next_url)
        assert status == 200, next_url
        _, items = read_feed(body, fmt)
        assert items, "a page in range is never empty"
        seen.extend(item.id for item in items)
        next_url = paging_links(body, fmt).get("next")
        pages += 1
        assert pages <= 10, "paging does not end"
    expected = truth(site, kind, name)
    assert len(seen) == len(set(seen)), "an item appears on two pages"
    assert seen == expected
    assert len(expected) == {"robots": 120, "all": 125}[name]


def test_out_of_range_page_is_404_and_bad_page_is_400(fetch: Fetch) -> None:
    for fmt in ("atom", "rss", "json"):
        assert fetch(f"/topics/robots.{fmt}?page=4")[0] == 404
        assert fetch(f"/topics/space.{fmt}?page=2")[0] == 404
        assert fetch(f"/topics/robots.{fmt}?page=999999999")[0] == 404
        assert fetch(f"/topics/robots.{fmt}?page=99999999999999999999999")[0] == 404
        for bad in ("0", "00", "-1", "two", "1.5", "", "+1", "\uff12"):
            assert fetch(f"/topics/robots.{fmt}?page={bad}")[0] == 400, bad
    assert fetch("/topics/robots/?page=4")[0] == 404
    assert fetch("/topics/robots/?page=0")[0] == 400


def test_page_number_with_leading_zeros_is_that_page(fetch: Fetch) -> None:
    """Digits are all `?page=` needs: `02` is page 2, not a bad request."""
    assert fetch("/topics/robots.atom?page=02") == fetch("/topics/robots.atom?page=2")
    assert fetch("/topics/robots.json?page=01") == fetch("/topics/robots.json")


def test_page_one_is_the_feed(fetch: Fetch) -> None:
    assert fetch("/topics/robots.atom?page=1") == fetch("/topics/robots.atom")


def test_pages_are_cached_like_feeds(served: Site) -> None:
    client = served.client
    first = client.get("/topics/robots.rss?page=2")
    assert first.status_code == 200 and first.headers["ETag"]
    assert first.headers["Cache-Control"].startswith("public, max-age=")
    again = client.get(
        "/topics/robots.rss?page=2", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert again.status_code == 304 and again.data == b""
    since = client.get(
        "/topics/robots.rss?page=2", headers={"If-Modified-Since": first.headers["Last-Modified"]}
    )
    assert since.status_code == 304
    assert client.get("/topics/robots.rss?page=3").headers["ETag"] != first.headers["ETag"]


def test_html_page_links_older_and_newer_pages(fetch: Fetch) -> None:
    status, body = fetch("/topics/robots/?page=2")
    assert status == 200
    page = html.fromstring(body)
    assert page.xpath("//link[@rel='prev']/@href") == ["/topics/robots/"]
    assert page.xpath("//link[@rel='next']/@href") == ["/topics/robots/?page=3"]
    assert page.xpath("//nav//a[@rel='next']/@href") == ["/topics/robots/?page=3"]
    assert len(page.xpath("//ol[@class='items']/li")) == 50
    status, body = fetch("/topics/robots/?page=3")
    page = html.fromstring(body)
    assert page.xpath("//link[@rel='next']") == []
    assert len(page.xpath("//ol[@class='items']/li")) == 20


def test_live_server_pages_through_the_fast_path(
    site: tuple[Path, Path], live_server_factory
) -> None:
    server = live_server_factory(*site)
    seen: list[str] = []
    next_url: str | None = f"{server.url}/topics/robots.atom"
    while next_url:
        status, headers, body = server.get(next_url.removeprefix(server.url))
        assert status == 200
        assert headers["Content-Type"] == "application/atom+xml; charset=utf-8"
        seen.extend(item.id for item in read_feed(body, "atom")[1])
        next_url = paging_links(body, "atom").get("next")
        assert next_url is None or next_url.startswith(server.url)  # self-consistent URLs
    assert seen == truth(site, "topics", "robots")
    assert server.get("/topics/robots.atom?page=4")[0] == 404
    status, headers, _ = server.get("/topics/robots.json?page=3")
    assert status == 200
    etag = headers["ETag"]
    assert server.get("/topics/robots.json?page=3", {"If-None-Match": etag})[0] == 304
