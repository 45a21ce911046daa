"""Jekyll and Hugo pages → the Article model: which kind a file is, and where each kind
keeps each meaning.

`Kind` is the table (README, "Jekyll and Hugo"): for every meaning, the fields its
generator reads it from, the first one set winning. A new field, alias or generator is
a change to this table. A file is Hugo's if its front matter is TOML or JSON, Jekyll's
if it is under `_posts/` or `_drafts/` or has a field only Jekyll knows, Hugo's if it
has a date or another field Hugo reads; anything else is an everyday-cc file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urljoin

from feedservice.ingest import fields as f
from feedservice.ingest.body import render_body
from feedservice.ingest.clean import canonical_identity, clean_url, parse_date, plain_text, truncate
from feedservice.ingest.fields import Findings
from feedservice.ingest.frontmatter import FrontMatter
from feedservice.ingest.model import Article, Author, Image
from feedservice.ingest.permalink import Place, Site, expand, place_of

MAX_AUTHORS = 20


@dataclass(frozen=True)
class Kind:
    name: str
    published: tuple[str, ...]
    updated: tuple[str, ...]
    link: tuple[str, ...]  # a path on base_url (placeholders allowed) or an absolute URL
    topics: tuple[str, ...]
    authors: tuple[str, ...]
    summary: tuple[str, ...]
    images: tuple[str, ...]
    expiry: tuple[str, ...]
    draft: str  # "published" (false makes a draft) or "draft" (true makes one)
    more: str | None  # the body marker that ends the summary (else: the first paragraph)
    templates: str  # "liquid" or "shortcodes": what is stripped from the body
    permalink: str  # the default rule (permalink.STYLES)
    any_case: bool  # field names are read in any case


JEKYLL = Kind(
    "jekyll",
    published=("date",),
    updated=("last_modified_at",),
    link=("permalink",),
    topics=("tags", "categories", "category"),
    authors=("author", "authors"),
    summary=("excerpt",),
    images=("image",),
    expiry=(),
    draft="published",
    more=None,  # or the page's own `excerpt_separator`
    templates="liquid",
    permalink="date",
    any_case=False,
)
HUGO = Kind(
    "hugo",
    published=("publishdate", "pubdate", "published", "date"),
    updated=("lastmod", "modified"),
    link=("url",),
    topics=("tags", "categories"),  # and the site's `taxonomies`
    authors=("author", "authors"),
    summary=("summary",),
    images=("images", "featured_image"),
    expiry=("expirydate", "unpublishdate"),
    draft="draft",
    more="<!--more-->",
    templates="shortcodes",
    permalink="hugo",
    any_case=True,
)
_JEKYLL_ONLY = frozenset(("permalink", "last_modified_at", "excerpt_separator"))
_HUGO_SIGNS = frozenset(("slug", "draft", "aliases", *HUGO.published, *HUGO.updated, *HUGO.link))
_LOOSE_DATE = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ]+(\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?))?"
    r"(?:\s+(\d{4}))?\s*(Z|UTC|GMT|[+-]\d{2}:?\d{2})?"
)


def kind_of(front: FrontMatter, source: str) -> Kind | None:
    """The kind of a file that has none of the everyday-cc fields (None: not a static page)."""
    if front.form != "yaml":
        return HUGO
    if place_of(source).post or not _JEKYLL_ONLY.isdisjoint(front.data):
        return JEKYLL
    if not _HUGO_SIGNS.isdisjoint(str(key).lower() for key in front.data):
        return HUGO
    return None


def site_article(
    front: FrontMatter, source: str, kind: Kind, site: Site, now: float, found: Findings
) -> Article | None:
    """The Article a static-site page gives, its problems recorded in `found`."""
    data = front.data
    if kind.any_case:  # (problems still name each field as the file spells it)
        data = {str(key).lower(): value for key, value in reversed(data.items())}
    place = place_of(source)
    fail, warn, field = found.fail, found.warn, found.field
    title = field(lambda: _title(data, kind, place, fail, warn))
    published = field(lambda: _published(data, kind, place, site, fail, now))
    updated = _optional_date(data, kind.updated, site, warn)
    expires = _optional_date(data, kind.expiry, site, warn)
    marked = field(lambda: _draft_flag(data, kind, fail), False)
    slug = data.get("slug") if isinstance(data.get("slug"), str) else None
    categories = (*place.categories, *_names(data, ("category", "categories"), kind, _quiet))
    topic_keys = kind.topics + (site.taxonomies if kind is HUGO else ())
    names = _names(data, topic_keys, kind, warn)
    topics = field(lambda: f.topics([*place.categories, *names], fail, warn, "tags"), ())
    if found.fatal:
        return None
    link = field(lambda: _link(data, kind, place, site, published, slug, categories, fail))
    if link is None:
        return None
    more = data.get("excerpt_separator") if kind is JEKYLL else kind.more
    body = render_body(front.body, kind.templates, place.html, link, more)
    for note in body.notes:
        warn("(body)", note)
    summary = field(lambda: _first_text(data, kind.summary, fail, warn))
    return Article(
        identity=canonical_identity(link),
        link=link,
        title=title,
        published=published,
        source=source,
        excerpt=summary or truncate(body.summary, f.MAX_EXCERPT_CHARS),
        is_draft=marked or place.in_drafts,  # (scheduled and expired: the catalog's rule)
        topics=topics,
        images=_image(data, kind, site, warn),
        content_html=body.html,
        updated=updated,
        authors=_authors(data, kind),
        expires=expires,
    )


def _title(data: dict[str, Any], kind: Kind, place: Place, fail: Any, warn: Any) -> str:
    if data.get("title") is None and kind is JEKYLL:  # Jekyll titles a post by its name
        return " ".join(word.capitalize() for word in place.name.split("-"))
    return f.required_text(data, "title", fail, f.MAX_TITLE_CHARS, warn)


def site_date(value: Any, site: Site) -> datetime:
    """A front-matter date; one without an offset is in the site's timezone (kept as a
    fixed offset, as the store reads it back)."""
    found = _site_date(value, site)
    return found.astimezone(timezone(found.utcoffset() or timedelta(0)))


def _site_date(value: Any, site: Site) -> datetime:
    """Also what Ruby's Time.parse reads in Jekyll: `2013-05-06 02:12:52 +0200`, a
    repeated year."""
    try:
        return parse_date(value, site.zone)
    except ValueError:
        loose = _LOOSE_DATE.fullmatch(value.strip()) if isinstance(value, str) else None
        if loose is None or loose.group(5) not in (None, loose.group(1)):
            raise
        year, month, day, clock, _, offset = loose.groups()
        hour, _, rest = (clock or "0:00").partition(":")
        offset = "+00:00" if offset in ("Z", "UTC", "GMT") else offset or ""
        offset = offset if ":" in offset or not offset else f"{offset[:3]}:{offset[3:]}"
        text = f"{year}-{int(month):02d}-{int(day):02d}T{int(hour):02d}:{rest}{offset}"
        return parse_date(text, site.zone)


def _draft_flag(data: dict[str, Any], kind: Kind, fail: Any) -> bool:
    """Jekyll: `published: false` makes a draft; Hugo: `draft: true`."""
    if kind.draft == "published":
        return not f.published_flag(data.get("published", True), fail)
    return f.published_flag(data.get("draft", False), fail, "draft")


def _quiet(key: str, message: str) -> None:
    """A `warn` for a second reading of fields that are already checked."""


def _published(
    data: dict[str, Any], kind: Kind, place: Place, site: Site, fail: Any, now: float
) -> datetime:
    for key in kind.published:
        value = data.get(key)
        if value is not None and not isinstance(value, bool):
            try:
                return site_date(value, site)
            except ValueError as error:
                raise fail(key, str(error)) from None
    if place.date is not None:  # a Jekyll post's file name: midnight, site time
        return site_date(place.date, site)
    if place.in_drafts:  # an undated Jekyll draft: dated when read (Jekyll: when saved)
        return datetime.fromtimestamp(int(now), UTC)
    raise fail(kind.published[-1], "is required (or a YYYY-MM-DD- file name in _posts/)")


def _optional_date(
    data: dict[str, Any], keys: tuple[str, ...], site: Site, warn: Any
) -> datetime | None:
    for key in keys:
        if data.get(key) not in (None, ""):
            try:
                return site_date(data[key], site)
            except ValueError as error:
                warn(key, f"{error}; ignored")
    return None


def _names(data: dict[str, Any], keys: tuple[str, ...], kind: Kind, warn: Any) -> list[Any]:
    """Topic names from several fields (a Jekyll list written as one string is split)."""
    names: list[Any] = []
    for key in keys:
        value = data.get(key)
        if isinstance(value, str) and kind is JEKYLL and key != "category":
            value = value.split()
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            value = [value]
        if isinstance(value, list):
            names.extend(value)
        elif value is not None:
            warn(key, "must be a list of names; ignored")
    return names


def _link(
    data: dict[str, Any],
    kind: Kind,
    place: Place,
    site: Site,
    published: datetime,
    slug: str | None,
    categories: tuple[Any, ...],
    fail: Any,
) -> str:
    """The page's absolute link: its own, else the site's rule, on `base_url`."""
    key = next((k for k in kind.link if isinstance(data.get(k), str) and data[k].strip()), None)
    rule = data[key].strip() if key else site.permalink or kind.permalink
    if "://" in rule:
        url = rule
    else:
        local = published.astimezone(site.zone)
        words = tuple(str(name) for name in categories if isinstance(name, str | int | float))
        url = site.base_url + expand(rule, place, local, slug=slug, categories=words)
    try:
        return clean_url(url)
    except ValueError as error:
        raise fail(key or kind.link[0], f"no absolute link for this page: {error}") from None


def _first_text(data: dict[str, Any], keys: tuple[str, ...], fail: Any, warn: Any) -> str | None:
    for key in keys:
        text = f.optional_text(data, key, fail, f.MAX_EXCERPT_CHARS, warn)
        if text:
            return text
    return None


def _authors(data: dict[str, Any], kind: Kind) -> tuple[Author, ...]:
    """`author` and `authors`: names, or mappings with a name and a url."""
    people: dict[str, Author] = {}
    for key in kind.authors:
        value = data.get(key)
        for item in value if isinstance(value, list) else [value]:
            name, url = (
                (item.get("name"), item.get("url") or item.get("uri"))
                if isinstance(item, dict)
                else (item, None)
            )
            if isinstance(name, str) and plain_text(name) and len(people) < MAX_AUTHORS:
                try:
                    url = clean_url(url) if url else None
                except ValueError:
                    url = None
                name = truncate(plain_text(name), f.MAX_SHORT_TEXT)
                people.setdefault(name, Author(name, url))
    return tuple(people.values())


def _image(data: dict[str, Any], kind: Kind, site: Site, warn: Any) -> tuple[Image, ...]:
    """The first image, a path on the site (or a URL): a string, a list, or `{path}`."""
    for key in kind.images:
        value = data.get(key)
        value = (value or [None])[0] if isinstance(value, list) else value
        if isinstance(value, dict):
            value = value.get("path") or value.get("url")
        if isinstance(value, str) and value.strip():
            try:
                return (Image(clean_url(urljoin(site.base_url + "/", value.strip()))),)
            except ValueError as error:
                warn(key, f"image {error}; image dropped")
    return ()
