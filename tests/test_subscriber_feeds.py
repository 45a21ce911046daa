"""Feeds shaped by subscribers (issue 19): filters on every feed, one canonical URL per
filter set, provider feeds, search feeds and the HTML form, through the Flask test
client and real readers (feedparser, lxml)."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import feedparser
import pytest
from conftest import REPO, Site, article_fields, write_config, write_seed
from lxml import etree, html

from feedservice.http import filters, source
from feedservice.runtime.websub import WebSubPublisher

BASE = "http://feeds.test"
A = "/feeds/all.atom?"  # (the parameters below are asked of it)
ATOM = "{http://www.w3.org/2005/Atom}"
# n: (topics, provider domain, quality, day of March 2021)
ARTICLES = {
    1: (["AI"], "example.com", 10, 1),
    2: (["AI", "Machine Learning"], "example.com", 60, 2),
    3: (["Machine Learning"], "news.example", 70, 3),
    4: (["Robots"], "news.example", 80, 4),
    5: (["AI", "Robots"], "XN--BCHER-KVA.example", 90, 5),  # (an IDNA name)
    6: (["Computer Vision"], "example.com", 20, 6),
    7: (["AI", "Computer Vision"], "news.example", 55, 7),
    8: (["Robots", "Machine Learning"], "example.com", 65, 8),
    9: (["AI"], "news.example", 75, 9),
    10: (["AI", "Machine Learning", "Robots"], "example.com", 95, 10),
    11: (["Sea"], "example.com", 5, 11),
}


def write_articles(seeds: Path) -> None:
    for n, (topics, domain, quality, day) in ARTICLES.items():
        provider = {"name": domain.split(".")[0].title(), "domain": domain}
        title = f"Robots build ships {n}" if n % 3 == 0 else f"Ocean news {n}"
        fields = article_fields(
            n, topics=topics, provider=provider, quality=quality, title=title,
            publishedDateTime=f"2021-03-{day:02d}T12:00:00Z",
        )  # fmt: skip
        write_seed(seeds, f"{n}.md", **fields)


@pytest.fixture
def site(tmp_path: Path, site_factory) -> Site:
    seeds = tmp_path / "seeds"
    write_articles(seeds)
    config = write_config(
        tmp_path / "feeds.yaml", title="Acme", base_url=BASE, topic_limit=3,
        websub_hub="https://hub.example/",
    )  # fmt: skip
    return site_factory(seeds, config)


def numbers(body: bytes) -> list[int]:
    """The article numbers of a feed's entries, in feed order (feedparser reads it)."""
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.bozo_exception
    return [int(entry.link.rsplit("/", 1)[1]) for entry in parsed.entries]


def walk(site: Site, url: str) -> list[int]:
    """Every entry of a feed, following its RFC 5005 `next` links as a reader does."""
    found: list[int] = []
    seen = set()
    while url and url not in seen:
        seen.add(url)
        response = site.get(url.removeprefix(BASE))
        assert response.status_code == 200, url
        found += numbers(response.data)
        document = etree.fromstring(response.data)
        nexts = [
            link.get("href") for link in document.iter(ATOM + "link") if link.get("rel") == "next"
        ]
        url = nexts[0] if nexts else ""
    return found


def newest_first(chosen: list[int]) -> list[int]:
    return sorted(chosen, key=lambda n: -ARTICLES[n][3])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("topics=ai", [n for n, a in ARTICLES.items() if "AI" in a[0]]),
        ("topics=machine-learning,robots",
         [n for n, a in ARTICLES.items() if {"Machine Learning", "Robots"} & set(a[0])]),
        ("all=ai,machine-learning", [2, 10]),
        ("exclude=ai", [n for n, a in ARTICLES.items() if "AI" not in a[0]]),
        ("exclude=robots&topics=ai", [1, 2, 7, 9]),
        ("provider=news.example", [3, 4, 7, 9]),
        ("provider=example.com&provider=xn--bcher-kva.example", [1, 2, 5, 6, 8, 10, 11]),
        ("min_quality=70", [n for n, a in ARTICLES.items() if a[2] >= 70]),
        ("since=2021-03-08T00:00:00Z", [8, 9, 10, 11]),
        ("min_quality=60&provider=example.com&since=2021-03-02T00:00:00Z&topics=ai", [2, 10]),
        ("q=robots", [3, 6, 9]),
        ("q=ocean+-news", []),
        ("topics=no-such-topic", []),
    ],
)  # fmt: skip
def test_filters_choose_the_articles_and_paging_walks_them(
    site: Site, query: str, expected: list[int]
) -> None:
    assert walk(site, f"{BASE}/feeds/all.atom?{query}") == newest_first(expected)
    first = site.get(f"/feeds/all.rss?{query}")
    assert first.status_code == 200
    assert numbers(first.data) == newest_first(expected)[:3]  # the feed's own limit


def test_a_topic_feed_takes_filters_too_and_limit_is_at_most_its_own(site: Site) -> None:
    assert walk(site, f"{BASE}/topics/ai.atom?min_quality=60") == [10, 9, 5, 2]
    items = site.get("/topics/ai.json?limit=2").get_json()["items"]
    assert [item["url"].rsplit("/", 1)[1] for item in items] == ["10", "9"]
    response = site.get("/topics/ai.json?limit=4")
    assert response.status_code == 400 and b"limit must be at most 3" in response.data
    assert site.get("/topics/ai.json?limit=3").headers["Location"] == f"{BASE}/topics/ai.json"


def test_paging_links_and_self_keep_the_parameters(site: Site) -> None:
    body = site.get("/feeds/all.atom?exclude=sea&page=2").data
    links = {
        link.get("rel"): link.get("href") for link in etree.fromstring(body).iter(ATOM + "link")
    }
    assert links["self"] == f"{BASE}/feeds/all.atom?exclude=sea&page=2"
    assert links["first"] == f"{BASE}/feeds/all.atom?exclude=sea"
    assert links["previous"] == f"{BASE}/feeds/all.atom?exclude=sea"
    assert links["next"] == f"{BASE}/feeds/all.atom?exclude=sea&page=3"
    assert links["last"] == f"{BASE}/feeds/all.atom?exclude=sea&page=4"
    assert "hub" not in links  # a subscriber's feed is no WebSub topic
    rss = etree.fromstring(site.get("/feeds/all.rss?exclude=sea").data)
    assert {link.get("rel") for link in rss.iter(ATOM + "link")} == {
        "self",
        "first",
        "next",
        "last",
    }
    document = site.get("/feeds/all.json?exclude=sea").get_json()
    assert "hubs" not in document
    assert document["next_url"] == f"{BASE}/feeds/all.json?exclude=sea&page=2"
    assert site.get("/feeds/all.json").get_json()["hubs"]  # the fixed feed advertises it


@pytest.mark.parametrize(
    ("asked", "canonical"),
    [
        (A + "topics=robots,ai", A + "topics=ai,robots"),  # order
        (A + "topics=AI", A + "topics=ai"),  # case
        (A + "topics=Machine%20Learning", A + "topics=machine-learning"),
        (A + "topics=ai,ai&topics=AI", A + "topics=ai"),  # duplicates
        (A + "topics=ai&min_quality=0", A + "topics=ai"),  # defaults
        (A + "topics=ai&page=1", A + "topics=ai"),
        (A + "exclude=&topics=ai&q=", A + "topics=ai"),  # empty fields
        (A + "topics=ai&exclude=sea", A + "exclude=sea&topics=ai"),
        (A + "min_quality=007", A + "min_quality=7"),
        (A + "provider=B%C3%BCcher.Example.", A + "provider=xn--bcher-kva.example"),
        (A + "provider=news.example,example.com",
         A + "provider=example.com&provider=news.example"),
        (A + "since=2021-03-08T02:00:00%2B02:00", A + "since=2021-03-08T00:00:00Z"),
        (A + "since=2021-03-08", A + "since=2021-03-08T00:00:00Z"),
        (A + "since=2021-03-08t00:00:00.500z", A + "since=2021-03-08T00:00:00.5Z"),
        (A + "q=Robots%20%20Ships", A + "q=robots+ships"),
        (A + "topics=ai%2Crobots", A + "topics=ai,robots"),  # a form's comma
        ("/topics/AI.rss", "/topics/ai.rss"),  # a display name in the path
        ("/topics/Computer%20Vision/", "/topics/computer-vision/"),
        ("/topics/Machine%20Learning.atom?Topics", None),  # (a bad query is a 400 first)
        ("/providers/News.Example.atom", "/providers/news.example.atom"),
        ("/providers/b%C3%BCcher.example/", "/providers/xn--bcher-kva.example/"),
        ("/search.json?q=Ships+robots", "/search.json?q=robots+ships"),
    ],
)  # fmt: skip
def test_every_other_spelling_is_a_301_to_the_one_canonical_url(
    site: Site, asked: str, canonical: str | None
) -> None:
    response = site.get(asked)
    if canonical is None:
        assert response.status_code == 400
        return
    assert response.status_code == 301, response.data
    assert response.headers["Location"] == BASE + canonical
    assert site.get(canonical).status_code == 200  # and that is a fixed point


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("colour=red", "unknown parameter 'colour'"),
        ("min_quality=high", "min_quality must be a whole number"),
        ("min_quality=-1", "min_quality"),
        ("limit=0", "limit must be a whole number"),
        ("since=yesterday", "since must be an RFC 3339 date"),
        ("since=2021-03-08T00:00:00", "since needs a time zone offset"),
        ("provider=not a domain", "provider 'not a domain' is not a domain name"),
        ("page=0", "page must be a whole number"),
        ("page=2&page=3", "page is given more than once"),
        ("q=-only", "q has only excluded words"),
        ("q=" + "a" * 201, "q is longer than 200 characters"),
        ("topics=" + ",".join(f"t{n}" for n in range(21)), "at most 20 parameter values"),
        ("topics=ai%00", "topics must not hold control characters"),
        ("topics=%FF", "topics must be UTF-8"),
    ],
)
def test_bad_parameters_are_one_line_400s_naming_the_key(
    site: Site, query: str, names: str
) -> None:
    for path in ("/feeds/all.atom", "/topics/ai/"):
        response = site.get(f"{path}?{query}")
        assert response.status_code == 400, (path, query)
        text = response.data.decode()
        assert names in text and text.count("\n") == 1, text


def test_hostile_queries_are_answered_at_once(site: Site) -> None:
    assert site.get("/feeds/all.atom?" + "&".join(["topics=ai"] * 10_000)).status_code == 414
    assert site.get("/feeds/all.atom?" + "&".join(["a"] * 2_000)).status_code == 400
    assert site.get("/feeds/all.atom?topics=" + "x," * 3000).status_code == 400
    assert site.get("/feeds/all.atom?since=" + "9" * 5000).status_code == 400
    unicode = site.get("/feeds/all.atom?topics=K%C3%BCnstliche%20Intelligenz")
    assert unicode.headers["Location"] == f"{BASE}/feeds/all.atom?topics=kunstliche-intelligenz"
    assert site.get("/feeds/all.atom?topics=kunstliche-intelligenz").status_code == 200


def test_filtered_feeds_have_validators_304_and_gzip(site: Site) -> None:
    url = "/feeds/all.atom?min_quality=50"
    first = site.get(url)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert first.headers["Cache-Control"].startswith("public, max-age=")
    assert site.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert site.get(url, headers={"If-Modified-Since": modified}).status_code == 304
    zipped = site.get(url, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == first.data
    assert zipped.headers["ETag"] != etag
    assert site.get(url).data == first.data  # (the memo's answer: the same bytes)


def test_a_filter_matching_nothing_is_a_valid_empty_feed(site: Site) -> None:
    for fmt in ("atom", "rss"):
        body = site.get(f"/feeds/all.{fmt}?topics=nothing-like-it").data
        parsed = feedparser.parse(body)
        assert not parsed.bozo and parsed.entries == [] and parsed.feed.title
    document = etree.fromstring(site.get("/feeds/all.atom?topics=nothing-like-it").data)
    for child in ("id", "title", "updated"):
        assert document.find(ATOM + child) is not None
    assert site.get("/feeds/all.json?topics=nothing-like-it").get_json()["items"] == []
    assert b"No articles match" in site.get("/feeds/all/?topics=nothing-like-it").data


def test_provider_feeds_pages_list_and_opml(site: Site) -> None:
    assert numbers(site.get("/providers/news.example.rss").data) == [9, 7, 4]
    assert walk(site, f"{BASE}/providers/xn--bcher-kva.example.atom") == [5]
    page = html.fromstring(site.get("/providers/news.example/").data)
    assert page.findtext(".//h1") == "News"
    listing = site.get("/providers/").data.decode()
    assert "/providers/news.example/" in listing and "/providers/example.com/" in listing
    opml = etree.fromstring(site.get("/providers.opml").data)
    assert {o.get("xmlUrl") for o in opml.iter("outline") if o.get("xmlUrl")} == {
        f"{BASE}/providers/{domain}.atom"
        for domain in ("example.com", "news.example", "xn--bcher-kva.example")
    }
    assert numbers(site.get("/providers/news.example.rss?min_quality=76").data) == [4]


def test_search_feeds_and_their_page(site: Site) -> None:
    assert walk(site, f"{BASE}/search.atom?q=robots") == [9, 6, 3]
    assert walk(site, f"{BASE}/search.atom?q=%22build+ships+9%22") == [9]
    assert walk(site, f"{BASE}/search.atom?q=ocean+-10") == [11, 8, 7, 5, 4, 2, 1]
    assert walk(site, f"{BASE}/search.atom?q=robots&topics=computer-vision") == [6]
    assert site.get("/search.atom").status_code == 400
    title = feedparser.parse(site.get("/search.rss?q=robots").data).feed.title
    assert "robots" in title
    index = html.fromstring(site.get("/").data)
    (box,) = [form for form in index.forms if form.action == "/search/"]
    assert box.method == "GET" and "q" in box.fields
    found = site.get("/search/?q=robots").data.decode()
    assert f"{BASE}/search.atom?q=robots" in found and "Robots build ships 9" in found


def submit(site: Site, path: str, **values: str) -> tuple[str, Any]:
    """Fill a page's filter form as a browser would (every field, empty ones too), follow
    the redirect, and return the canonical URL and the page it shows."""
    page = html.fromstring(site.get(path).data)
    (form,) = [form for form in page.forms if "filters" in form.classes]
    assert form.method == "GET" and form.action == path.partition("?")[0]
    fields = {name: value or "" for name, value in form.fields.items()}
    fields.update(values)
    response = site.get(f"{form.action}?{urlencode(fields)}")
    if response.status_code == 301:
        location = response.headers["Location"]
        response = site.get(location.removeprefix(BASE))
    else:
        location = BASE + form.action + "?" + urlencode(fields)
    assert response.status_code == 200, response.data
    return location, html.fromstring(response.data)


def test_the_form_builds_the_canonical_feed_url_without_javascript(site: Site) -> None:
    location, page = submit(site, "/feeds/all/", topics="Robots, AI", min_quality="60")
    assert location == f"{BASE}/feeds/all/?min_quality=60&topics=ai,robots"
    assert page.get_element_by_id("feed-url").value == (
        f"{BASE}/feeds/all.atom?min_quality=60&topics=ai,robots"
    )
    assert not page.xpath("//script")
    links = {link.get("type"): link.get("href") for link in page.xpath("//link[@rel='alternate']")}
    assert links["application/rss+xml"] == "/feeds/all.rss?min_quality=60&topics=ai,robots"
    form = next(form for form in page.forms if "filters" in form.classes)
    assert form.fields["topics"] == "ai,robots" and form.fields["min_quality"] == "60"
    _, again = submit(site, location.removeprefix(BASE), exclude="machine-learning")
    assert again.get_element_by_id("feed-url").value == (
        f"{BASE}/feeds/all.atom?exclude=machine-learning&min_quality=60&topics=ai,robots"
    )
    moved = site.get('/feeds/all/?q=%3Cscript%3Ealert(1)%3C/script%3E+"x')
    hostile = site.get(moved.headers["Location"].removeprefix(BASE)).data
    assert b"<script" not in hostile and b"</script" not in hostile and b"&lt;/script" in hostile


def test_subscriber_feeds_off_says_so_and_keeps_the_fixed_feeds(
    tmp_path: Path, site_factory
) -> None:
    seeds = tmp_path / "seeds"
    write_articles(seeds)
    config = write_config(tmp_path / "feeds.yaml", base_url=BASE, subscriber_feeds=False)
    site = site_factory(seeds, config)
    for url in ("/feeds/all.atom?topics=ai", "/search.atom?q=robots", "/topics/ai/?limit=2"):
        response = site.get(url)
        assert response.status_code == 400 and response.data == b"400 subscriber feeds are off\n"
    for url in ("/feeds/all.atom", "/feeds/all.atom?page=1", "/providers/news.example.rss"):
        assert site.get(url).status_code == 200, url
    assert site.get("/topics/AI.rss").status_code == 301  # a display name is no filter


def test_filtered_answers_are_memoised_per_generation_and_bounded(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = source.Source(site.store)
    route = filters_route("/feeds/all.atom", "topics=ai")
    generation, first = worker.document(route)  # type: ignore[misc]
    assert worker._subscriber_memo.documents[route.key] is first
    assert worker.document(route)[1] is first  # type: ignore[index]
    monkeypatch.setattr(
        source, "SUBSCRIBER_MEMO_BYTES", 2 * (len(first.body) + len(first.gzip_body))
    )
    others = [filters_route("/feeds/all.atom", f"min_quality={n}") for n in range(1, 6)]
    for other in others:
        worker.document(other)
    kept = worker._subscriber_memo
    assert len(kept.documents) <= 2 and kept.size <= source.SUBSCRIBER_MEMO_BYTES
    assert others[-1].key in kept.documents  # the newest stay, the oldest made room
    assert route.key not in kept.documents
    assert kept.generation == generation.id


def filters_route(path: str, query: str) -> Any:
    from feedservice.http import urls

    route = urls.parse(path, query)
    assert route is not None and route.subscriber
    return route


def test_no_websub_ping_for_subscribers_feeds(site: Site) -> None:
    """The hub hears of changed fixed feeds only: never of a URL with a query."""
    published: list[str] = []
    publisher = WebSubPublisher()
    publisher.publish = lambda hub, url: published.append(url)  # type: ignore[method-assign]
    site.loader.listeners.append(publisher)
    site.get("/feeds/all.atom?topics=ai")
    write_seed(site.loader.seeds, "12.md", **article_fields(12, topics=["AI"]))
    assert site.reload() is not None
    assert publisher.wait_idle(10)
    assert published and all(urlsplit(url).query == "" for url in published)
    assert f"{BASE}/providers/example.com.atom" in published  # provider feeds are fixed feeds


def test_limits_are_the_documented_ones() -> None:
    assert filters.MAX_VALUES == 20 and filters.MAX_Q_CHARS == 200
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    for text in ("20 parameter values", "200 characters", "subscriber_feeds", "8 MiB"):
        assert text in readme, text


def test_metrics_label_shaped_feeds_by_their_shape() -> None:
    """Metrics name URL shapes, never raw paths or queries."""
    from feedservice.runtime.metrics import _label

    assert _label("/search.atom") == ("/search", "atom")
    assert _label("/providers/news.example.rss") == ("/providers/<name>", "rss")


_NUMPY_PROBE = """
import sys
from pathlib import Path
from feedservice.http.app import create_app
from feedservice.runtime.loader import Loader
from feedservice.store.db import Store
store = Store.in_dir(Path(sys.argv[2]))
Loader(store, Path(sys.argv[1]), None, environ={}).reload()
client = create_app(Store.in_dir(Path(sys.argv[2]), writable=False)).test_client()
seen = ["numpy" in sys.modules]
assert client.get("/feeds/all.rss").status_code == 200
seen.append("numpy" in sys.modules)
assert client.get("/feeds/all.rss?topics=ai").status_code == 200
seen.append("numpy" in sys.modules)
print(seen)
"""


def test_numpy_is_loaded_by_the_first_subscribers_feed_only(tmp_path: Path) -> None:
    """numpy costs ~13 MB of memory in every process that imports it: the loader and a
    worker that serves only fixed feeds never do."""
    seeds = tmp_path / "seeds"
    write_articles(seeds)
    probe = [sys.executable, "-c", _NUMPY_PROBE, str(seeds), str(tmp_path / "state")]
    result = subprocess.run(probe, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[-2] == "[False, False, True]"
