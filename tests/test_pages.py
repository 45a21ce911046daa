"""The HTML pages: index, /topics/<slug>/ and /feeds/<name>/.

They must show each item (title linked to the article, provider, date,
thumbnail, excerpt), subscribe links in every format, a copyable feed URL and
autodiscovery tags; escape everything; need no JavaScript; and work under the
Content-Security-Policy (no inline styles or scripts).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import article_fields, write_config, write_seed
from flask.testing import FlaskClient
from lxml import html

HOSTILE_SITE = "Feeds <script>alert('site')</script> & \"co\""
FEED_TYPES = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "json": "application/feed+json",
}


@pytest.fixture
def client(tmp_path: Path, site_factory) -> FlaskClient:
    seeds = tmp_path / "seeds"
    write_seed(
        seeds,
        "hostile.md",
        **article_fields(
            1,
            title="x < y & \"z\" 'q' <img src=x onerror=alert(1)>",
            excerpt="<script>alert(1)</script>Read & weep > now",
            topics=["Robots & Androids", "AI"],
            provider={"name": 'Evil "Corp" <b>', "domain": "evil.example"},
            images=[{"url": 'https://img.example/a.jpg?x=1&y="2"', "width": 640, "height": 480}],
            webUrl='https://news.example/story?id=1&ref="a"',
        ),
    )
    for n in range(2, 8):
        write_seed(seeds, f"a{n}.md", **article_fields(n, topics=["AI"]))
    config = write_config(
        tmp_path / "feeds.yaml",
        title=HOSTILE_SITE,
        description="Desc <i>x</i>",
        base_url="http://feeds.test",
        topic_limit=3,
        feeds=[{"name": "robots", "title": 'Robots <&> "all"', "topics": ["Robots & Androids"]}],
    )
    return site_factory(seeds, config).client


def page(client: FlaskClient, path: str) -> html.HtmlElement:
    response = client.get(path)
    assert response.status_code == 200, path
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "style-src 'self'" in csp
    assert "unsafe-inline" not in csp
    return html.fromstring(response.data)


def assert_safe(document: html.HtmlElement) -> None:
    """No script, no event handlers, no inline style (the CSP would block it)."""
    assert document.xpath("//script") == []
    assert document.xpath("//style") == []
    for element in document.iter():
        if not isinstance(element.tag, str):
            continue
        assert "style" not in element.attrib, element.tag
        assert not any(name.startswith("on") for name in element.attrib), element.attrib
        for name in ("href", "src"):
            value = element.get(name, "")
            assert not value.lower().startswith(("javascript:", "data:text")), value
    assert document.xpath("//link[@rel='stylesheet']/@href") == ["/static/style.css"]


@pytest.mark.parametrize("path", ["/", "/topics/ai/", "/topics/ai/?page=2", "/feeds/robots/"])
def test_pages_are_escaped_and_script_free(client: FlaskClient, path: str) -> None:
    document = page(client, path)
    assert_safe(document)
    assert document.findtext(".//header//a") == HOSTILE_SITE
    assert document.get("lang") == "en"
    assert len(document.xpath("//h1")) == 1
    assert all(image.get("alt") is not None for image in document.iter("img"))


def test_topic_page_shows_each_item(client: FlaskClient) -> None:
    document = page(client, "/topics/robots-androids/")
    (item,) = document.xpath("//ol[@class='items']/li")
    link = item.xpath(".//h3/a")[0]
    assert link.text == "x < y & \"z\" 'q'"
    assert link.get("href") == "https://news.example/story?id=1&ref=%22a%22"
    assert item.xpath(".//p[@class='meta']/span")[0].text == 'Evil "Corp"'
    assert item.xpath(".//time/@datetime") == ["2021-03-02T01:00:00+00:00"]
    assert item.xpath(".//p[@class='excerpt']")[0].text == "alert(1)Read & weep > now"
    image = item.xpath(".//img")[0]
    assert image.get("src") == "https://img.example/a.jpg?x=1&y=%222%22"
    assert (image.get("width"), image.get("height"), image.get("alt")) == ("640", "480", "")
    topics = item.xpath(".//ul[@class='topics']//a")
    assert [(a.text, a.get("href")) for a in topics] == [
        ("Robots & Androids", "/topics/robots-androids/"),
        ("AI", "/topics/ai/"),
    ]
    for href in (a.get("href") for a in topics):
        assert client.get(href).status_code == 200


def test_subscribe_links_copyable_url_and_autodiscovery(client: FlaskClient) -> None:
    document = page(client, "/feeds/robots/")
    alternates = document.xpath("//head/link[@rel='alternate']")
    assert {(link.get("type"), link.get("href")) for link in alternates} == {
        (kind, f"/feeds/robots.{fmt}") for fmt, kind in FEED_TYPES.items()
    }
    assert all('Robots <&> "all"' in link.get("title") for link in alternates)
    subscribe = document.xpath("//section[@class='subscribe']//a")
    assert [(a.get("type"), a.get("href")) for a in subscribe] == [
        (kind, f"/feeds/robots.{fmt}") for fmt, kind in FEED_TYPES.items()
    ]
    (field,) = document.xpath("//input[@id='feed-url']")
    assert field.get("readonly") is not None
    assert field.get("value") == "http://feeds.test/feeds/robots.atom"
    assert document.xpath("//label[@for='feed-url']")
    for a in subscribe:
        response = client.get(a.get("href"))
        assert response.status_code == 200
        assert response.mimetype == a.get("type")


def test_index_links_every_page_and_feed(client: FlaskClient) -> None:
    document = page(client, "/")
    pages = document.xpath("//table//th[@scope='row']/a/@href")
    assert pages == ["/feeds/all/", "/feeds/robots/", "/topics/ai/", "/topics/robots-androids/"]
    for href in pages:
        assert client.get(href).status_code == 200
    for href in document.xpath("//td[@class='formats']/a/@href"):
        assert client.get(href).status_code == 200
    for href in document.xpath("//footer//a/@href"):
        response = client.get(href)
        assert response.status_code == 200 and response.mimetype == "text/x-opml"


def test_pager_links_and_out_of_range(client: FlaskClient) -> None:
    first = page(client, "/topics/ai/")
    assert first.xpath("//nav[@class='pager']/a/@href") == ["/topics/ai/?page=2"]
    assert len(first.xpath("//ol[@class='items']/li")) == 3
    middle = page(client, "/topics/ai/?page=2")
    assert middle.xpath("//nav[@class='pager']/a/@rel") == ["prev", "next"]
    assert middle.xpath("//nav[@class='pager']/a/@href") == ["/topics/ai/", "/topics/ai/?page=3"]
    last = page(client, "/topics/ai/?page=3")
    assert last.xpath("//nav[@class='pager']/a/@rel") == ["prev"]
    assert client.get("/topics/ai/?page=4").status_code == 404
    assert client.get("/topics/ai/?page=x").status_code == 400
    assert client.get("/topics/nope/").status_code == 404
    single = page(client, "/feeds/robots/")
    assert single.xpath("//nav[@class='pager']") == []


def test_pages_are_cached_with_validators(client: FlaskClient) -> None:
    response = client.get("/topics/ai/")
    etag = response.headers["ETag"]
    assert client.get("/topics/ai/", headers={"If-None-Match": etag}).status_code == 304
    assert client.get("/topics/ai/?page=2").headers["ETag"] != etag


def test_stylesheet_is_served(client: FlaskClient) -> None:
    response = client.get("/static/style.css")
    assert response.status_code == 200
    assert response.mimetype == "text/css"
    assert b"prefers-color-scheme: dark" in response.data
