"""HTTP behaviour through the Flask test client: types, validators, 304, gzip, HEAD, errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from conftest import Site, article_fields, write_seed
from consumers import read_feed
from flask.testing import FlaskClient
from lxml import etree

TYPES = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
}


@pytest.fixture
def site(seeds: Path, config_file: Path, site_factory) -> Site:
    write_seed(seeds, "1.md", **article_fields(1, topics=["AI", "Machine Learning"]))
    write_seed(seeds, "2.md", **article_fields(2, topics=["AI in Autos"]))
    write_seed(seeds, "draft.md", **article_fields(3, published=False, topics=["Secret Topic"]))
    return site_factory(seeds, config_file)


@pytest.fixture
def client(site: Site) -> FlaskClient:
    return site.client


@pytest.mark.parametrize("path", ["/topics/ai", "/topics/ai-in-autos", "/feeds/ml", "/feeds/all"])
@pytest.mark.parametrize("fmt", list(TYPES))
def test_feeds_are_served_with_headers(client: FlaskClient, path: str, fmt: str) -> None:
    response = client.get(f"{path}.{fmt}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == TYPES[fmt]
    assert response.headers["Cache-Control"] == "public, max-age=1"
    assert response.headers["Vary"] == "Accept-Encoding"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["ETag"].startswith('"') and response.headers["Last-Modified"]
    _, items = read_feed(response.data, fmt)
    assert items


def test_conditional_get(client: FlaskClient) -> None:
    first = client.get("/topics/ai.atom")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert client.get("/topics/ai.atom", headers={"If-None-Match": etag}).status_code == 304
    assert (
        client.get("/topics/ai.atom", headers={"If-None-Match": f'"other", {etag}'}).status_code
        == 304
    )
    assert client.get("/topics/ai.atom", headers={"If-None-Match": '"other"'}).status_code == 200
    assert client.get("/topics/ai.atom", headers={"If-Modified-Since": modified}).status_code == 304
    assert (
        client.get(
            "/topics/ai.atom", headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}
        ).status_code
        == 200
    )
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
    assert (
        client.get(
            "/topics/ai.atom", headers={"If-None-Match": '"other"', "If-Modified-Since": modified}
        ).status_code
        == 200
    )
    not_modified = client.get("/topics/ai.atom", headers={"If-None-Match": etag})
    assert not_modified.data == b"" and not_modified.headers["ETag"] == etag


def test_malformed_validators_are_ignored(client: FlaskClient) -> None:
    for headers in ({"If-Modified-Since": "not a date"}, {"If-None-Match": "garbage"}):
        response = client.get("/topics/ai.rss", headers=headers)
        assert response.status_code == 200 and response.data


def test_gzip_once_per_render(client: FlaskClient) -> None:
    plain = client.get("/feeds/all.rss")
    zipped = client.get("/feeds/all.rss", headers={"Accept-Encoding": "gzip, deflate"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == plain.data
    assert zipped.headers["ETag"] != plain.headers["ETag"]
    assert int(zipped.headers["Content-Length"]) == len(zipped.data)
    refused = client.get("/feeds/all.rss", headers={"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in refused.headers
    again = client.get(
        "/feeds/all.rss",
        headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]},
    )
    assert again.status_code == 304


def test_head(client: FlaskClient) -> None:
    get = client.get("/topics/ai.json")
    head = client.head("/topics/ai.json")
    assert head.status_code == 200 and head.data == b""
    assert head.headers["Content-Length"] == str(len(get.data))
    assert head.headers["ETag"] == get.headers["ETag"]


@pytest.mark.parametrize(
    "path",
    [
        "/topics/nope.rss",
        "/feeds/nope.atom",
        "/topics/ai.xml",
        "/topics/secret-topic.rss",
        "/topics/..%2f..%2fetc%2fpasswd.rss",
        "/feeds/../../etc/passwd",
        "/topics/ai.rss?page=9",
    ],
)
def test_unknown_feeds_are_short_404s(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert len(response.data) < 100


def test_bad_page_is_400(client: FlaskClient) -> None:
    for value in ("0", "-1", "abc", "1e3", ""):
        assert client.get(f"/topics/ai.rss?page={value}").status_code == 400


def test_index_links_every_feed_and_autodiscovers_the_site_wide_one(client: FlaskClient) -> None:
    """Autodiscovery offers the site-wide feed only (a reader subscribing from the index
    gets one sensible choice, and the head stays small); every feed is linked in the body."""
    response = client.get("/")
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    document = etree.HTML(response.data)
    alternates = document.xpath("//head/link[@rel='alternate']")
    assert {link.get("href") for link in alternates} == {f"/feeds/all.{fmt}" for fmt in TYPES}
    assert {link.get("type") for link in alternates} == {
        "application/rss+xml",
        "application/atom+xml",
        "application/feed+json",
    }
    body_links = {link.get("href") for link in document.xpath("//body//a")}
    for path in ("/topics/ai", "/topics/machine-learning", "/topics/ai-in-autos", "/feeds/ml"):
        assert any(href.startswith(path) for href in body_links), path
    assert "secret-topic" not in response.get_data(as_text=True)


def test_opml_lists_all_feeds(client: FlaskClient) -> None:
    response = client.get("/feeds.opml")
    assert response.status_code == 200
    root = etree.fromstring(response.data)
    assert root.get("version") == "2.0"
    urls = {o.get("xmlUrl") for o in root.iter("outline") if o.get("xmlUrl")}
    assert "http://feeds.test/topics/ai.atom" in urls
    assert "http://feeds.test/feeds/all.atom" in urls


def test_healthz(client: FlaskClient) -> None:
    health = json.loads(client.get("/healthz").data)
    assert health["articles"] == 2
    assert health["feeds"] == 5  # all, ml + topics ai, machine-learning, ai-in-autos
    assert health["seed_errors"] == {"count": 0, "first": []}
    assert health["last_reload"].endswith("Z") and health["last_reload_duration_ms"] >= 0


def test_feeds_are_rendered_once_per_generation(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Page 1 comes from the store as the loader rendered it; a worker never renders it."""
    import feedservice.render.documents as documents

    def fail(*args: object) -> bytes:
        raise AssertionError("a request re-rendered a feed")

    for fmt in ("rss", "atom", "json", "html"):
        monkeypatch.setitem(documents.RENDERERS, fmt, fail)
    for _ in range(3):
        assert client.get("/topics/ai.rss").status_code == 200
        assert client.get("/topics/ai/").status_code == 200


def test_405_carries_allow(client: FlaskClient) -> None:
    response = client.post("/topics/ai.rss")
    assert response.status_code == 405
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "HEAD"}
