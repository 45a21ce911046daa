"""Property: for any set of seed files, every feed is well formed and exactly right.

Hypothesis writes sets of seed files (hostile text included: control characters,
markup, entities, right-to-left text, emoji, any non-surrogate code point), runs
them through the real parser, catalog and renderers, and reads every page of every
feed back with feedparser, lxml and the JSON Feed checks. Each feed must hold
exactly the published, de-duplicated articles of its topics, newest first, with
the same titles and links as the catalog.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import yaml
from consumers import read_feed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedservice.articles import Article, parse_seed, slugify
from feedservice.catalog import CONFIGURED_KIND, TOPIC_KIND, build_catalog
from feedservice.config import parse_config
from feedservice.documents import DocumentSet
from feedservice.seeds import SeedError

FORMATS = ("rss", "atom", "json")
TAG_START = re.compile(r"<[A-Za-z/!?]")  # what HTML parsers treat as markup
SECRET = "SEKRIT-prop"
CONFIG = parse_config(
    {
        "title": "Properties",
        "base_url": "http://feeds.test",
        "topic_limit": 3,  # small pages, so paging is exercised too
        "feeds": [{"name": "ml", "title": "ML", "topics": ["Machine Learning"], "limit": 4}],
    }
)
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


def expected_feeds(articles: list[Article]) -> dict[tuple[str, str], list[Article]]:
    """The model: published, de-duplicated by identity (newest, then first path),
    newest first (ties by identity), grouped by topic slug."""
    winners: dict[str, Article] = {}
    for article in articles:
        if article.is_draft:
            continue
        best = winners.get(article.identity)
        if best is None or (-article.published.timestamp(), article.source) < (
            -best.published.timestamp(),
            best.source,
        ):
            winners[article.identity] = article
    ordered = sorted(winners.values(), key=lambda a: (-a.published.timestamp(), a.identity))
    feeds: dict[tuple[str, str], list[Article]] = {(CONFIGURED_KIND, "all"): ordered}
    feeds[(CONFIGURED_KIND, "ml")] = [
        a for a in ordered if "machine-learning" in {slugify(t) for t in a.topics}
    ]
    for article in ordered:
        for slug in dict.fromkeys(slugify(t) for t in article.topics):
            feeds.setdefault((TOPIC_KIND, slug), []).append(article)
    return feeds


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(article_fields, max_size=10))
def test_every_feed_is_well_formed_and_exact(seeds: list[dict[str, Any]]) -> None:
    articles = []
    for number, fields in enumerate(seeds):
        try:
            articles.append(parse_seed(seed_bytes(fields), f"seed-{number:02d}.md").article)
        except SeedError as error:
            assert error.field == "title", error  # nothing left once markup is removed
            continue
    for article in articles:  # plain text: nothing a reader could take for a tag
        assert article.title and article.title == " ".join(article.title.split())
        assert not TAG_START.search(article.title), article.title
        assert not TAG_START.search(article.excerpt), article.excerpt
    catalog = build_catalog(articles, CONFIG)
    documents = DocumentSet(catalog)
    expected = expected_feeds(articles)
    assert set(catalog.feeds) == set(expected)
    for (kind, name), wanted in expected.items():
        feed = catalog.feed(kind, name)
        assert feed is not None
        assert [a.identity for a in feed.items] == [a.identity for a in wanted]
        for fmt in FORMATS:
            titles_links = []
            for number in range(1, feed.page_count + 1):
                document = documents.get(fmt, kind, name, number)
                assert document is not None
                assert SECRET.encode() not in document.body
                # No field or element named `secured` (the word may be in generated text).
                assert b'"secured"' not in document.body and b"<secured" not in document.body
                _, items = read_feed(document.body, fmt)
                titles_links.extend((item.title, item.link) for item in items)
            assert titles_links == [(a.title, a.link) for a in wanted], (kind, name, fmt)
