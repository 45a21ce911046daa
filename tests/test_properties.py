"""Property: for any set of seed files, every feed is well formed and exactly right.

Hypothesis writes sets of seed files (hostile text included: control characters,
markup, entities, right-to-left text, emoji, any non-surrogate code point) into a
temp seed directory, runs the real loader into a store and reads every page of every
feed back through the HTTP app with feedparser, lxml and the JSON Feed checks. Each
feed must hold exactly the published, de-duplicated articles of its topics, newest
first, with the same titles and links as the parser gives.
"""

from __future__ import annotations

import re
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml
from conftest import make_site, write_config
from consumers import read_feed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedservice.ingest.article import Article, parse_seed
from feedservice.ingest.clean import slugify
from feedservice.ingest.problem import Problem

FORMATS = ("rss", "atom", "json")
TAG_START = re.compile(r"<[A-Za-z/!?]")  # what HTML parsers treat as markup
SECRET = "SEKRIT-prop"
CONFIG = {
    "title": "Properties",
    "base_url": "http://feeds.test",
    "topic_limit": 3,  # small pages, so paging is exercised too
    "feeds": [{"name": "ml", "title": "ML", "topics": ["Machine Learning"], "limit": 4}],
}
TOPIC_POOL = [
    "AI",
    "ai",
    "A.I.",
    "Machine Learning",
    "machine-learning",
    "Robots",
    "日本語",
    "<b>Bold</b>",
    "",
    "Ünïcödé",
    "x" * 120,
]
LINK_POOL = [f"https://prop.example/a/{n}" for n in range(8)]  # few: duplicates are common
HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "&amp;",
    "&lt;b&gt;",
    "]]>",
    "\x00",
    "\x1b[31m",
    "\u202e",
    "مرحبا",
    "שלום",
    "👨‍👩‍👧",
    "🇺🇳",
    "\ufeff",
    "\u2028",
    "CafÃ©",
    "'\"",
    "\\",
    "{{ x }}",
    "%s",
    "\ud7ff",
    "\ue000",
    "\U0010fffd",
]

text = st.lists(
    st.one_of(
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
        st.sampled_from(HOSTILE),
    ),
    min_size=1,
    max_size=6,
).map("".join)
dates = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9998, 12, 30),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
    ),
)
article_fields = st.fixed_dictionaries(
    {
        "title": text,
        "excerpt": text,
        "publishedDateTime": dates,
        "webUrl": st.sampled_from(LINK_POOL),
        "published": st.sampled_from([True, True, True, False]),
        "topics": st.lists(st.sampled_from(TOPIC_POOL), max_size=4),
        "secured": st.just(SECRET),
    }
)


def seed_bytes(fields: dict[str, Any]) -> bytes:
    return ("---\n" + yaml.safe_dump(fields, allow_unicode=True) + "---\n").encode()


def expected_feeds(articles: list[Article], now: datetime) -> dict[str, list[Article]]:
    """The model: published (not draft, not scheduled after `now`), de-duplicated by
    identity (newest, then first path), newest first (ties by identity), grouped by topic
    slug."""
    winners: dict[str, Article] = {}
    for article in articles:
        if article.is_draft or article.published > now:
            continue
        best = winners.get(article.identity)
        if best is None or (-article.published.timestamp(), article.source) < (
            -best.published.timestamp(),
            best.source,
        ):
            winners[article.identity] = article
    ordered = sorted(winners.values(), key=lambda a: (-a.published.timestamp(), a.identity))
    feeds: dict[str, list[Article]] = {"feeds/all": ordered}
    feeds["feeds/ml"] = [a for a in ordered if "machine-learning" in {slugify(t) for t in a.topics}]
    for article in ordered:
        for slug in dict.fromkeys(slugify(t) for t in article.topics):
            feeds.setdefault(f"topics/{slug}", []).append(article)
    return feeds


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(article_fields, max_size=10))
def test_every_feed_is_well_formed_and_exact(seeds: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory(prefix="feedservice-properties-") as temp:
        check_site(Path(temp), seeds)


def as_feedparser_reads(text: str) -> str:
    """feedparser takes any text that is Latin-1 and valid UTF-8 as mis-decoded UTF-8 and
    decodes it again (its "common error" fix, in mixin.pop): a title `Ä¡`, served as such
    (lxml reads it so), is `ġ` to it."""
    try:
        return text.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def check_site(base: Path, seeds: list[dict[str, Any]]) -> None:
    directory = base / "seeds"
    directory.mkdir()
    articles = []
    for number, fields in enumerate(seeds):
        name = f"seed-{number:02d}.md"
        (directory / name).write_bytes(seed_bytes(fields))
        try:
            articles.append(parse_seed(seed_bytes(fields), name).article)
        except Problem as error:
            assert error.field == "title", error  # nothing left once markup is removed
            continue
    for article in articles:  # plain text: nothing a reader could take for a tag
        assert article.title and article.title == " ".join(article.title.split())
        assert not TAG_START.search(article.title), article.title
        assert not TAG_START.search(article.excerpt), article.excerpt
    now = datetime.now(UTC)  # (the loader's clock: a date within this second is unlikely)
    site = make_site(directory, write_config(base / "feeds.yaml", **CONFIG), base / "state")
    try:
        catalog = site.loader.catalog
        assert catalog is not None
        expected = expected_feeds(articles, now)
        assert set(catalog.feeds) == set(expected)
        for key, wanted in expected.items():
            feed = catalog.feeds[key]
            assert [entry.identity for entry in feed.entries] == [a.identity for a in wanted]
            for fmt in FORMATS:
                titles_links = []
                for number in range(1, feed.page_count + 1):
                    query = f"?page={number}" if number > 1 else ""
                    response = site.get(f"/{key}.{fmt}{query}")
                    assert response.status_code == 200, (key, fmt, number)
                    body = response.get_data()
                    assert SECRET.encode() not in body
                    # No field or element named `secured` (the word may be in generated text).
                    assert b'"secured"' not in body and b"<secured" not in body
                    _, items = read_feed(body, fmt)
                    titles_links.extend((item.title, item.link) for item in items)
                read = as_feedparser_reads if fmt != "json" else str
                assert titles_links == [(read(a.title), a.link) for a in wanted], (key, fmt)
                past = site.get(f"/{key}.{fmt}?page={feed.page_count + 1}")
                assert past.status_code == 404, (key, fmt)
            page = site.get(f"/{key}/")
            assert page.status_code == 200 and SECRET.encode() not in page.get_data()
    finally:
        site.store.close()
