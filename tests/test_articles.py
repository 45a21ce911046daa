"""Seed file bytes → Article: required fields, cleaning, identity, errors with field and line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from adversarial import CASES, write_corpus
from conftest import REALWORLD, SAMPLE_SEEDS, article_fields, seed_text
from hypothesis import given, settings
from hypothesis import strategies as st

from feedservice.ingest.article import Article, parse_seed
from feedservice.ingest.clean import (
    canonical_identity,
    canonical_identity_by_parts,
    clean_url,
    plain_text,
    slugify,
)
from feedservice.ingest.files import read_seed, scan
from feedservice.ingest.problem import Problem
from feedservice.ingest.record import from_record_text, record_text, revision


def parse(**fields: object):
    return parse_seed(seed_text(**fields).encode(), "a.md")


def revision_of(data: bytes, source: str = "a.md") -> str:
    return revision(record_text(parse_seed(data, source).article))


def test_sample_fields_are_modelled() -> None:
    fields = article_fields(
        1,
        images=[
            {
                "url": "https://img.example/1.jpg",
                "width": 1200,
                "height": 600,
                "isCached": True,
                "title": "A picture",
            }
        ],
        related=[
            {
                "title": "Related one",
                "webUrl": "https://other.example/r1",
                "provider": {"name": "Other"},
                "publishedDateTime": "2021-03-02T00:00:00Z",
            }
        ],
        originalUrl="https://example.com/original/1",
        heat=88,
    )
    article = parse(**fields).article
    assert article.title == "Article number 1"
    assert article.link == "https://example.com/articles/1"
    assert article.original_url == "https://example.com/original/1"
    assert article.published == datetime(2021, 3, 2, 1, tzinfo=UTC)
    assert article.provider is not None and article.provider.name == "Example News"
    assert article.images[0].width == 1200 and article.images[0].title == "A picture"
    assert article.related[0].link == "https://other.example/r1"
    assert article.related[0].provider == "Other"
    assert (article.quality, article.heat, article.topics) == (50, 88, ("AI",))


def test_secured_is_never_kept() -> None:
    parsed = parse(**article_fields(1))
    assert "SECRET" not in repr(parsed)
    record = record_text(parsed.article)  # what the store keeps
    assert "SECRET" not in record and "secured" not in record


@pytest.mark.parametrize("missing", ["title", "publishedDateTime"])
def test_required_fields(missing: str) -> None:
    fields = article_fields(1)
    del fields[missing]
    with pytest.raises(Problem) as error:
        parse(**fields)
    assert error.value.field == missing
    assert error.value.fatal
    assert "a.md" in str(error.value)


def test_link_falls_back_to_original_url_and_is_required() -> None:
    fields = article_fields(1)
    del fields["webUrl"]
    fields["originalUrl"] = "https://example.com/orig"
    assert parse(**fields).article.link == "https://example.com/orig"
    del fields["originalUrl"]
    with pytest.raises(Problem) as error:
        parse(**fields)
    assert error.value.field == "webUrl"


def test_error_names_the_yaml_line_of_the_field() -> None:
    text = seed_text(**article_fields(1)).replace("title: Article number 1", "title: [a, b]")
    with pytest.raises(Problem) as error:
        parse_seed(text.encode(), "x.md")
    assert error.value.field == "title"
    assert error.value.line == 3  # line 1 is '---', category is line 2
    assert str(error.value).startswith("x.md: title: must be text")
    assert str(error.value).endswith("(line 3)")


def test_naive_dates_mean_utc_and_offsets_are_kept() -> None:
    naive = parse(**article_fields(1, publishedDateTime="2021-11-12 05:20:00")).article
    assert naive.published == datetime(2021, 11, 12, 5, 20, tzinfo=UTC)
    offset = parse(**article_fields(1, publishedDateTime="2021-11-12T07:20:00+02:00")).article
    assert offset.published.utcoffset() == timedelta(hours=2)
    assert offset.published == datetime(2021, 11, 12, 5, 20, tzinfo=UTC)
    rfc822 = parse(**article_fields(1, publishedDateTime="Fri, 12 Nov 2021 05:20:00 GMT"))
    assert rfc822.article.published == datetime(2021, 11, 12, 5, 20, tzinfo=UTC)
    day = parse(**article_fields(1, publishedDateTime="2021-11-12")).article
    assert day.published == datetime(2021, 11, 12, tzinfo=UTC)
    assert day.published.tzinfo is not None


def test_unparseable_date_is_a_field_error() -> None:
    with pytest.raises(Problem) as error:
        parse(**article_fields(1, publishedDateTime="next tuesday"))
    assert error.value.field == "publishedDateTime"
    assert "ISO 8601" in error.value.message


def test_draft_flag() -> None:
    assert parse(**article_fields(1, published=False)).article.is_draft
    fields = article_fields(1)
    del fields["published"]
    assert not parse(**fields).article.is_draft  # missing means published, as in Jekyll
    with pytest.raises(Problem) as error:
        parse(**article_fields(1, published=[1]))
    assert error.value.field == "published"


def test_mojibake_control_characters_and_markup_are_cleaned() -> None:
    article = parse(
        **article_fields(
            1,
            title="  Googleâ€™s\x00 <b>new</b>\tmodel\x07  ",
            excerpt="It’s <script>x()</script>fine",
        )
    ).article
    assert article.title == "Google’s new model"
    assert article.excerpt == "It’s x()fine"
    assert "\x07" not in article.title


def test_plain_text_strips_entity_encoded_markup() -> None:
    assert plain_text("&lt;img src=x onerror=alert(1)&gt;Hello") == "Hello"
    assert plain_text("AT&amp;T &lt;3 you") == "AT&T <3 you"
    assert plain_text("a  \n b") == "a b"


def test_urls_are_percent_encoded_but_otherwise_untouched() -> None:
    assert clean_url("https://example.com/a b?q=1&x=é") == "https://example.com/a%20b?q=1&x=%C3%A9"
    assert clean_url("https://example.com/a%20b") == "https://example.com/a%20b"
    for hostile in (
        "javascript:alert(1)",
        "data:text/html,<b>x</b>",
        "/relative/path",
        "ftp://example.com/x",
    ):
        with pytest.raises(ValueError):
            clean_url(hostile)


def test_hostile_web_url_falls_back_and_is_reported() -> None:
    parsed = parse(
        **article_fields(1, webUrl="javascript:alert(1)", originalUrl="https://example.com/safe")
    )
    assert parsed.article.link == "https://example.com/safe"
    assert any(
        w.field == "webUrl" and "javascript" in w.message and not w.fatal for w in parsed.warnings
    )


def test_identity_is_the_canonical_link() -> None:
    first = parse(**article_fields(1, webUrl="HTTPS://Example.COM:443/articles/1#top")).article
    edited = parse(**article_fields(1, title="A new title", excerpt="Edited")).article
    assert first.identity == edited.identity == "https://example.com/articles/1"
    assert canonical_identity("http://example.com") == "http://example.com/"
    # content changed, identity did not
    assert revision(record_text(first)) != revision(record_text(edited))


def test_the_revision_digests_what_is_published() -> None:
    """The store keys rendered output on revisions: every edit of what is published must
    change it; the same published content (another path, another body, a comment, keys
    in another order) must not."""
    text = seed_text(**article_fields(1))
    original = revision_of(text.encode())
    assert revision_of((text + "A body is never published.\n").encode(), "b/c.md") == original
    assert revision_of(text.replace("---\n", "---\n# a comment\n", 1).encode()) == original
    reordered = seed_text(**dict(reversed(list(article_fields(1).items()))))
    assert reordered != text and revision_of(reordered.encode()) == original
    for edited in (
        text.replace("Article number 1", "Article number one"),
        text.replace("example.com/articles/1", "example.com/articles/01"),
        text.replace("quality: 50", "quality: 51"),
        text.replace("- AI", "- AI\n- Robots"),
        text.replace("published: true", "published: false"),
        text.replace("T01:00:00Z", "T01:00:01Z"),
        text.replace("name: Example News", "name: Example Newz"),
    ):
        assert edited != text
        assert revision_of(edited.encode()) != original, edited


def test_topics() -> None:
    article = parse(**article_fields(1, topics=["AI", "ai", "", "AI in Autos", 42])).article
    assert article.topics == ("AI", "AI in Autos", "42")
    single = parse(**article_fields(1, topics="Robotics")).article
    assert single.topics == ("Robotics",)
    with pytest.raises(Problem) as error:
        parse(**article_fields(1, topics={"a": 1}))
    assert error.value.field == "topics"


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("AI in Autos", "ai-in-autos"),
        ("Machine Learning", "machine-learning"),
        ("  C++ / C#  ", "c-c"),
        ("Künstliche Intelligenz", "kunstliche-intelligenz"),
    ],
)
def test_slugify(name: str, slug: str) -> None:
    assert slugify(name) == slug


def test_slugify_non_latin_names_get_a_stable_slug() -> None:
    assert slugify("人工知能") == slugify("人工知能")
    assert slugify("人工知能").startswith("topic-")
    assert slugify("人工知能") != slugify("機械学習")


def test_dates_with_timezones_compare_correctly() -> None:
    east = parse(
        **article_fields(
            1,
            publishedDateTime=datetime(
                2021, 1, 1, 10, tzinfo=timezone(timedelta(hours=9))
            ).isoformat(),
        )
    ).article
    assert east.published.astimezone(UTC).hour == 1


# --- the stored form: what the store keeps reads back as exactly what was parsed ----------


def _every_article(root: Path) -> list[Article]:
    stamps, _ = scan(root)
    articles = []
    for relative in sorted(stamps):
        try:
            data, _ = read_seed(root, relative)
            articles.append(parse_seed(data, relative).article)
        except Problem:
            continue
    return articles


def assert_records_round_trip(articles: list[Article]) -> None:
    for article in articles:
        stored = record_text(article)
        json.loads(stored)  # JSON text, as the store keeps it
        again = from_record_text(stored, article.source)
        assert again == article, article.source
        # the same offsets, not only the same instants (feeds print the offset given)
        assert repr(again) == repr(article), article.source
        assert record_text(again) == stored


def test_every_real_article_reads_back_from_its_record() -> None:
    articles = _every_article(SAMPLE_SEEDS)
    if REALWORLD.is_dir():
        articles += _every_article(REALWORLD)
    assert len(articles) >= len(list(SAMPLE_SEEDS.iterdir()))
    assert any(a.related for a in articles) and any(a.images for a in articles)
    assert_records_round_trip(articles)


def test_every_adversarial_article_reads_back_from_its_record(tmp_path: Path) -> None:
    # (the nesting bombs are left out: test_adversarial parses them in a child process)
    write_corpus(tmp_path / "seeds", [case for case in CASES if "deep" not in case.name])
    articles = _every_article(tmp_path / "seeds")
    assert any(a.is_draft for a in articles) and any(a.published.year == 1 for a in articles)
    assert_records_round_trip(articles)


def test_every_field_reads_back_from_its_record() -> None:
    article = parse(
        **article_fields(
            1,
            publishedDateTime="2021-03-02T01:00:00.5+05:30",
            originalUrl="https://example.com/original/1",
            ampWebUrl="https://amp.example/1",
            cdnAmpWebUrl="https://cdn.example/1",
            heat=7,
            provider={
                "name": "P",
                "domain": "p.example",
                "images": [{"url": "https://p.example/logo.png", "width": 10, "height": 5}],
            },
            images=[{"url": "https://img.example/1.jpg", "title": "T"}],
            related=[
                {
                    "title": "R",
                    "webUrl": "https://r.example/",
                    "provider": {"name": "RP"},
                    "publishedDateTime": "2020-01-01T05:30:00-03:30",
                }
            ],
        )
    ).article
    page = parse_seed(  # the fields only static-site pages fill
        b"+++\ntitle = 'P'\ndate = 2021-01-01\nlastmod = 2021-02-01T10:00:00+01:00\n"
        b"expiryDate = 2999-01-01\nauthors = ['A']\n+++\nThe *body*.\n",
        "content/posts/p.md",
    ).article
    unset = [
        name
        for name, field in Article.__dataclass_fields__.items()
        if getattr(article, name) == field.default and getattr(page, name) == field.default
    ]
    assert unset == ["is_draft"], unset  # every other field is set, so every one is checked
    draft = parse(**article_fields(2, published=False)).article
    assert_records_round_trip([article, page, draft])


URL_PARTS = st.sampled_from(
    ["", "/", "a", "..", ".", "%7E", "~", "-", "_", "?", "#", "=", "&", "x.y"]
)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(["http", "https", "HTTP"]),
    st.sampled_from(["example.com", "EXAMPLE.com", "a.b.c", "x-y.z", "example.com:8080", "u@e.x"]),
    st.lists(URL_PARTS, max_size=8),
)
def test_the_quick_identity_equals_the_one_by_parts(
    scheme: str, host: str, parts: list[str]
) -> None:
    """Most links take a quick path to their identity; it must give exactly what urlsplit
    and the RFC 3986 rules give."""
    link = clean_url(f"{scheme}://{host}/" + "/".join(parts))
    assert canonical_identity(link) == canonical_identity_by_parts(link)


@pytest.mark.parametrize(
    "link",
    [
        "https://bücher.example/x",
        "https://b%C3%BCcher.example/x",
        "https://B%c3%bcCHER.example/x",
        "HTTPS://BÜCHER.example/x",
    ],
)
def test_a_non_ascii_host_is_published_in_idna_form_whatever_its_spelling(link: str) -> None:
    """RFC 3986 §3.2.2: a registered name in ASCII. Readers disagree on anything else
    (Node and browsers convert to IDNA, feedparser and gofeed keep escapes), and every
    spelling of one host must give the article one identity."""
    assert clean_url(link) == "https://xn--bcher-kva.example/x"
    assert canonical_identity(clean_url(link)) == "https://xn--bcher-kva.example/x"


def test_a_host_that_is_no_domain_name_is_refused() -> None:
    with pytest.raises(ValueError, match="not a domain name"):
        clean_url("https://%ff%fe.example/")
