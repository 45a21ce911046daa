"""The W3C Feed Validation Service rules that matter, checked with installable parts.

Each test is named after the validator message it guards against (class names
from w3c/feedvalidator's `logging.py`), and checks every RSS and Atom document —
every feed, every page — served for two corpora: the real-world corpus, the bundled
seeds and a set of awkward articles (markup and entities in text, non-ASCII and
non-canonical URLs, dates in other offsets, an empty configured feed); and the four
real Jekyll and Hugo sites of ../shared/sites/, with their full content. Small limits
make every topic page, and a hub is configured, so paging and WebSub links are
checked too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import feedparser
import pytest
from conftest import article_fields, make_site, realworld_and_samples, write_config, write_seed
from lxml import etree, html
from sites import SITES, require_sites, site_config

BASE = "http://feeds.test"
HUB = "https://hub.example/"
ATOM_NS = "http://www.w3.org/2005/Atom"
TOMBSTONES = "http://purl.org/atompub/tombstones/1.0"
REALWORLD_GONE = "2015-02-17-meet-the-new-face-detection-algorithm-that-will-change-image-search.md"
A = f"{{{ATOM_NS}}}"
CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
MEDIA = "{http://search.yahoo.com/mrss/}"
CONTENT_TYPES = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
}
# RFC 2822 as the validator's rfc2822_re has it (days, months, 4-digit year, numeric zone).
RFC2822 = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d? (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" \d{4} \d\d:\d\d:\d\d [+-]\d{4}$"
)
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
MIME = re.compile(r"^[a-z]+/[a-z0-9.+-]+$")
UNRESERVED = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
SAFE_TAGS = {"p", "ul", "li", "a"}
# What the validator's HTMLValidator accepts in content (validators.py acceptable_elements).
ACCEPTABLE_TAGS = set(
    [
        "a",
        "abbr",
        "acronym",
        "address",
        "area",
        "article",
        "aside",
        "audio",
        "b",
        "bdi",
        "big",
        "blockquote",
        "br",
        "button",
        "canvas",
        "caption",
        "center",
        "cite",
        "code",
        "col",
        "colgroup",
        "command",
        "data",
        "datagrid",
        "datalist",
        "dd",
        "del",
        "details",
        "dfn",
        "dialog",
        "dir",
        "div",
        "dl",
        "dt",
        "em",
        "eventsource",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "font",
        "form",
        "header",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hgroup",
        "hr",
        "i",
        "img",
        "input",
        "ins",
        "keygen",
        "kbd",
        "label",
        "legend",
        "li",
        "m",
        "main",
        "map",
        "mark",
        "menu",
        "meter",
        "multicol",
        "nav",
        "nextid",
        "ol",
        "output",
        "optgroup",
        "option",
        "p",
        "picture",
        "pre",
        "progress",
        "q",
        "rp",
        "rt",
        "ruby",
        "s",
        "samp",
        "section",
        "select",
        "small",
        "sound",
        "source",
        "spacer",
        "span",
        "strike",
        "strong",
        "sub",
        "summary",
        "sup",
        "table",
        "tbody",
        "td",
        "template",
        "textarea",
        "time",
        "tfoot",
        "th",
        "thead",
        "tr",
        "track",
        "tt",
        "u",
        "ul",
        "var",
        "video",
        "noscript",
        "wbr",
    ]
)
RULES_FEEDS = [
    {"name": "all", "title": "All", "topics": "*", "limit": 7},
    {"name": "empty", "title": "Nobody writes this", "topics": ["No such topic"]},
]


@dataclass(frozen=True)
class Served:
    url: str
    fmt: str
    content_type: str
    body: bytes
    corpus: str = "samples"

    @property
    def root(self) -> etree._Element:
        return etree.fromstring(self.body)


def awkward_articles(seeds: Path) -> None:
    """Articles that trip naive generators."""
    write_seed(
        seeds,
        "awkward/markup.md",
        **article_fields(
            9001,
            title='AT&T says <b>x < y</b> & "quotes" &copy; &amp;amp;',
            excerpt="<script>alert(1)</script> <a href='javascript:x' onclick=y>go</a> 日本語 🎉",
            webUrl="https://Example.COM:443/päth with space/./a/../b?q=a b&c=%7e#frag",
            publishedDateTime="2021-05-01T10:00:00+02:00",
            topics=["C++", "Künstliche Intelligenz", "日本"],
            images=[{"url": "https://img.example/pic?id=1&x=2", "width": 100, "height": 50}],
            related=[
                {"title": "Related & <i>one</i>", "webUrl": "https://r.example/a?x=1&y=2"},
                {"title": "Related two", "webUrl": "http://r2.example/b"},
            ],
        ),
    )
    write_seed(
        seeds,
        "awkward/escapes.md",
        **article_fields(
            9002,
            webUrl="https://example.net/why-it%e2%80%99s/100%/%41",
            publishedDateTime="Tue, 02 Feb 2021 10:00:00 -0500",
            topics=["C++"],
            images=[{"url": "https://img.example/y.PNG"}],
        ),
    )
    write_seed(
        seeds,
        "awkward/bare.md",
        title="No excerpt, no provider, date only",
        publishedDateTime="2021-03-01",
        originalUrl="http://example.org/only-original",
        topics=["C++"],
    )


@pytest.fixture(scope="module", params=["samples", "sites"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> list[Served]:
    """Every RSS and Atom document of the site (or sites), every page, fetched as a
    reader would."""
    tmp = tmp_path_factory.mktemp("rules")
    if request.param == "sites":
        root = require_sites()
        documents = []
        for name in SITES:
            config = site_config(
                tmp, name, language="en-GB", topic_limit=4, websub_hub=HUB, feeds=RULES_FEEDS
            )
            site = make_site(root / name, config, tmp / f"state-{name}")
            documents += fetch_all(site.client, SITES[name]["base_url"], "sites")
        assert len(documents) > 4 * len(SITES)  # every site has topic feeds, some paged
        return documents
    seeds = realworld_and_samples(tmp)
    awkward_articles(seeds)
    config = write_config(
        tmp / "feeds.yaml",
        title="Rules & <checks>",
        base_url=BASE,
        language="en-GB",
        topic_limit=4,
        websub_hub=HUB,
        icon="https://brand.example/icon.png",
        logo="https://brand.example/logo.png",
        author="Rules & <desk>",
        topics={"C++": {"title": "C plus plus & <friends>", "icon": "https://brand.example/c.png"}},
        feeds=RULES_FEEDS,
    )
    site = make_site(seeds, config, tmp / "state")
    (seeds / "realworld" / REALWORLD_GONE).unlink()  # tombstones in the feeds that held it
    assert site.reload() is not None
    documents = fetch_all(site.client, BASE, "samples")
    assert len(documents) > 50
    return documents


def fetch_all(client: Any, base: str, corpus: str) -> list[Served]:
    documents = []
    for fmt in ("rss", "atom"):
        opml = etree.fromstring(client.get(f"/feeds.opml?format={fmt}").data)
        queue = [outline.get("xmlUrl") for outline in opml.iter("outline") if outline.get("xmlUrl")]
        while queue:
            url = queue.pop()
            response = client.get(url.removeprefix(base))
            assert response.status_code == 200, url
            document = Served(url, fmt, response.headers["Content-Type"], response.data, corpus)
            documents.append(document)
            queue.extend(link for rel, link in feed_links(document) if rel == "next")
    return documents


def corpus(served: list[Served]) -> str:
    return served[0].corpus


def feed_links(document: Served) -> list[tuple[str, str]]:
    root = document.root
    links = root.findall(f"channel/{A}link") if document.fmt == "rss" else root.findall(f"{A}link")
    return [(link.get("rel"), link.get("href")) for link in links]


def entries(document: Served) -> list[etree._Element]:
    root = document.root
    return root.findall("channel/item") if document.fmt == "rss" else root.findall(f"{A}entry")


def of(served: list[Served], fmt: str) -> list[Served]:
    return [document for document in served if document.fmt == fmt]


def is_canonical(uri: str) -> bool:
    """RFC 3986 §6.2.2 normal form, as the validator's `canonicalForm` computes it."""
    parts = urlsplit(uri)
    if parts.scheme != parts.scheme.lower() or parts.netloc != parts.netloc.lower():
        return False
    if parts.port in {80, 443} or not parts.path:
        return False
    if re.search(r"(^|/)\.\.?(/|$)", parts.path):
        return False
    for escape in re.findall(r"%(..)", uri):
        if not re.fullmatch(r"[0-9A-F]{2}", escape):  # lower case, or not hex at all
            return False
        if chr(int(escape, 16)) in UNRESERVED:
            return False
    return True


# --- the document as a whole ------------------------------------------------------------------


def test_UnexpectedContentType_and_EncodingMismatch(served: list[Served]) -> None:
    for document in served:
        assert document.content_type == CONTENT_TYPES[document.fmt], document.url
        assert document.body.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
        document.body.decode("utf-8")


def test_feedparser_reads_every_document_without_bozo(served: list[Served]) -> None:
    for document in served:
        parsed = feedparser.parse(document.body)
        assert parsed.bozo == 0, (document.url, parsed.get("bozo_exception"))
        assert parsed.version == {"rss": "rss20", "atom": "atom10"}[document.fmt]


def test_SelfDoesntMatchLocation(served: list[Served]) -> None:
    for document in served:
        selves = [href for rel, href in feed_links(document) if rel == "self"]
        assert selves == [document.url], document.url


def test_MissingSelf_and_hub_in_rss(served: list[Served]) -> None:
    for document in of(served, "rss"):
        rels = [rel for rel, _ in feed_links(document)]
        assert rels.count("self") == 1 and rels.count("hub") == 1
        assert (
            document.root.find(f"channel/{A}link[@rel='self']").get("type") == "application/rss+xml"
        )


def test_paging_links_stay_in_their_format(served: list[Served]) -> None:
    paged = 0
    for document in served:
        links = dict(feed_links(document))
        for rel in ("first", "previous", "next", "last"):
            if rel in links:
                assert urlsplit(links[rel]).path.endswith("." + document.fmt)
        if "next" in links or "previous" in links:
            assert {"first", "last"} <= links.keys()
            paged += 1
    assert paged >= 10


def test_InvalidLanguage(served: list[Served]) -> None:
    for document in of(served, "rss"):
        assert document.root.findtext("channel/language") == "en-GB"
    for document in of(served, "atom"):
        assert document.root.get("{http://www.w3.org/XML/1998/namespace}lang") == "en-GB"


def test_ImageTitleDoesntMatch_ImageLinkDoesntMatch_and_ImageUrlFormat(served) -> None:
    """RSS `<image>` (the feed's logo) repeats the channel's title and link. (The samples'
    config brands every feed; the sites' brands none.)"""
    for document in of(served, "rss"):
        channel = document.root.find("channel")
        if channel.find("image") is None:
            assert corpus(served) == "sites", document.url
            continue
        assert channel.findtext("image/title") == channel.findtext("title"), document.url
        assert channel.findtext("image/link") == channel.findtext("link"), document.url
        assert channel.findtext("image/url").rsplit(".", 1)[1] in {"jpg", "jpeg", "gif", "png"}


def test_tombstones_are_RFC_6721_deleted_entries(served: list[Served]) -> None:
    """`at:deleted-entry` with a canonical `ref` and an RFC 3339 `when`, in Atom only."""
    found = 0
    for document in served:
        root = document.root
        deleted = list(root.iter(f"{{{TOMBSTONES}}}deleted-entry"))
        assert document.fmt == "atom" or not deleted, document.url
        for entry in deleted:
            found += 1
            assert is_canonical(entry.get("ref")) and RFC3339.match(entry.get("when"))
            assert entry.getparent() is root and entry.get("ref") not in [
                item.findtext(f"{A}id") for item in entries(document)
            ]
    if corpus(served) == "samples":  # (a file of it was deleted; none of the sites')
        assert found >= 2  # the deleted article's topic feed and `all`, at least


# --- dates --------------------------------------------------------------------------------------


def test_InvalidRFC2822Date_and_IncorrectDOW(served: list[Served]) -> None:
    for document in of(served, "rss"):
        dates = [document.root.findtext("channel/lastBuildDate")]
        dates += [item.findtext("pubDate") for item in entries(document)]
        for value in dates:
            assert RFC2822.match(value), value
            parsed = parsedate_to_datetime(value)
            assert value.startswith(parsed.strftime("%a, ")), f"wrong weekday: {value}"


def test_InvalidRFC3339Date(served: list[Served]) -> None:
    for document in of(served, "atom"):
        values = [document.root.findtext(f"{A}updated")]
        for entry in entries(document):
            values += [entry.findtext(f"{A}updated"), entry.findtext(f"{A}published")]
        for value in values:
            assert RFC3339.match(value), value


def test_ImplausibleDate(served: list[Served]) -> None:
    """The validator warns on dates before 1990 or after tomorrow; an empty feed used to
    say 1970. Real dates are kept as they are, never invented."""
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    for document in served:
        if document.fmt == "rss":
            values = [parsedate_to_datetime(document.root.findtext("channel/lastBuildDate"))]
        else:
            values = [datetime.fromisoformat(document.root.findtext(f"{A}updated"))]
        for value in values:
            assert datetime(1990, 1, 1, tzinfo=UTC) <= value <= tomorrow, document.url
    empty = [document for document in served if "/feeds/empty." in document.url]
    assert len(empty) in (2, 2 * len(SITES)) and all(entries(d) == [] for d in empty)


# --- entries ------------------------------------------------------------------------------------


def test_DuplicateItem_and_DuplicateEntries(served: list[Served]) -> None:
    for document in served:
        if document.fmt == "rss":
            ids = [item.findtext("guid") for item in entries(document)]
        else:
            ids = [entry.findtext(f"{A}id") for entry in entries(document)]
        assert all(ids) and len(ids) == len(set(ids)), document.url


def test_no_item_on_two_pages_of_one_feed(served: list[Served]) -> None:
    seen: dict[str, set[str]] = {}
    for document in of(served, "atom"):
        feed = document.url.split("?")[0]
        ids = {entry.findtext(f"{A}id") for entry in entries(document)}
        assert not ids & seen.get(feed, set()), document.url
        seen.setdefault(feed, set()).update(ids)


def test_InvalidHttpGUID_and_guid_permalink(served: list[Served]) -> None:
    permalinks = 0
    for document in of(served, "rss"):
        for item in entries(document):
            guid = item.find("guid")
            assert guid.text.startswith(("http://", "https://"))
            if guid.get("isPermaLink") == "true":
                assert guid.text == item.findtext("link")
                permalinks += 1
            else:
                assert guid.get("isPermaLink") == "false"
                assert guid.text != item.findtext("link")
    assert permalinks > 20


def test_NonCanonicalURI_for_atom_ids(served: list[Served]) -> None:
    ids = {entry.findtext(f"{A}id") for doc in of(served, "atom") for entry in entries(doc)}
    ids |= {doc.root.findtext(f"{A}id") for doc in of(served, "atom")}
    if corpus(served) == "samples":
        assert "https://example.net/why-it%E2%80%99s/100%25/A" in ids
        assert "https://example.com/p%C3%A4th%20with%20space/b?q=a%20b&c=~" in ids
    for value in ids:
        assert is_canonical(value), value


def test_MissingElement_in_atom(served: list[Served]) -> None:
    for document in of(served, "atom"):
        root = document.root
        for name in ("id", "title", "updated", "author/" + A + "name"):
            assert root.findtext(A + name), (document.url, name)
        for entry in entries(document):
            for name in ("id", "title", "updated", "content"):
                assert entry.find(A + name) is not None, name
            alternates = entry.findall(f"{A}link[@rel='alternate']")
            assert len(alternates) == 1 and alternates[0].get("type") == "text/html"


def test_ItemMustContainTitleOrDescription_and_MissingDescription(served: list[Served]) -> None:
    for document in of(served, "rss"):
        channel = document.root.find("channel")
        for name in ("title", "link", "description"):
            assert channel.findtext(name), name
        for item in entries(document):
            assert item.findtext("title") and item.findtext("link")


def test_InvalidFullLink_every_link_is_absolute_http(served: list[Served]) -> None:
    for document in served:
        for element in document.root.iter():
            for attribute in ("href", "url", "uri"):
                value = element.get(attribute)
                if value is not None:
                    assert value.startswith(("http://", "https://")), value
            if etree.QName(element).localname in {"link", "uri", "guid"} and element.text:
                text = element.text.strip()
                if text:
                    assert text.startswith(("http://", "https://")), text


def test_ContainsHTML_titles_are_plain_text(served: list[Served]) -> None:
    found = False
    for document in served:
        titles = [e.findtext("title") or e.findtext(f"{A}title") for e in entries(document)]
        for title in titles:
            assert not re.search(r"<[a-zA-Z/!]", title), title
            found = found or title.startswith("AT&T says x < y")
    assert found or corpus(served) == "sites"


def test_SecurityRisk_and_NotHtml_in_descriptions(served: list[Served]) -> None:
    """A summary (RSS description; Atom content without a full content) is a few safe
    tags; a full content (RSS content:encoded, Atom content) uses only tags the validator
    accepts, no event handler or style, and absolute links (ContainsRelRef)."""
    related_lists = full = 0
    for document in served:
        for entry in entries(document):
            text = entry.findtext("description") or entry.findtext(f"{A}content")
            content = entry.findtext(f"{{{CONTENT_NS}}}encoded")
            if document.fmt == "atom" and corpus(served) == "sites":
                text, content = None, text
            for fragment_text, tags in ((text, SAFE_TAGS), (content, ACCEPTABLE_TAGS)):
                if fragment_text is None:
                    continue
                fragment = html.fragment_fromstring(fragment_text, create_parent="div")
                for element in fragment.iterdescendants():
                    assert element.tag in tags, element.tag
                    names = set(element.attrib)
                    assert not {n for n in names if n.startswith("on")} and "style" not in names
                    for name in names & {"href", "src"}:
                        value = element.get(name)
                        assert value.startswith(("http://", "https://", "mailto:", "data:")), value
                    assert tags is ACCEPTABLE_TAGS or names <= {"href"}, element.attrib
                lowered = fragment_text.lower()
                assert "<script" not in lowered and 'href="javascript:' not in lowered
            related_lists += "Related:" in (text or "")
            full += content is not None
    assert related_lists > 0 if corpus(served) == "samples" else full > 100


def test_related_links_in_atom(served: list[Served]) -> None:
    for document in of(served, "atom"):
        for entry in entries(document):
            for link in entry.findall(f"{A}link[@rel='related']"):
                assert link.get("type") == "text/html" and link.get("title")


def test_enclosure_attributes(served: list[Served]) -> None:
    """RSS needs url, length and type (MissingAttribute, InvalidIntegerAttribute); length
    is 0 when the size is unknown, as the RSS Advisory Board recommends."""
    enclosures = 0
    for document in of(served, "rss"):
        for item in entries(document):
            found = item.findall("enclosure")
            assert len(found) <= 1, "RSS readers take only one enclosure"
            for enclosure in found:
                assert enclosure.get("url").startswith(("http://", "https://"))
                assert re.fullmatch(r"\d+", enclosure.get("length"))
                assert MIME.match(enclosure.get("type")), enclosure.get("type")
                enclosures += 1
    for document in of(served, "atom"):
        for link in document.root.iter(f"{A}link"):
            if link.get("rel") == "enclosure":
                assert MIME.match(link.get("type"))
                assert link.get("length") is None or link.get("length").isdigit()
    assert enclosures > 10


def test_media_rss_attributes(served: list[Served]) -> None:
    for document in served:
        for element in document.root.iter(MEDIA + "content", MEDIA + "thumbnail"):
            assert element.get("url").startswith(("http://", "https://"))
            for attribute in ("width", "height"):
                assert element.get(attribute) is None or element.get(attribute).isdigit()


def test_InvalidInteger_ttl(served: list[Served]) -> None:
    for document in of(served, "rss"):
        assert document.root.findtext("channel/ttl").isdigit()


def test_category_terms_are_not_blank(served: list[Served]) -> None:
    for document in served:
        for entry in entries(document):
            for category in entry.findall("category") + entry.findall(f"{A}category"):
                term = category.get("term") if document.fmt == "atom" else category.text
                assert term and term.strip() == term


def test_CharacterData_plain_text_uses_hexadecimal_references(served: list[Served]) -> None:
    """RSS Profile: `&` and `<` in plain-text elements are written `&#x26;` and `&#x3C;`."""
    plain = re.compile(rb"<(title|category|dc:creator)>([^<]*)</")
    escaped = 0
    for document in of(served, "rss"):
        for _, text in plain.findall(document.body):
            assert b"&amp;" not in text and b"&lt;" not in text, text
            escaped += b"&#x26;" in text
        if "/topics/" in document.url and corpus(served) == "samples":  # read back intact
            assert document.root.findtext("channel/title").endswith(" — Rules & <checks>")
    assert escaped > (10 if corpus(served) == "samples" else 0)
