"""The one Article model: every front-matter field, read, cleaned and validated here.

`parse_seed` turns a seed file's bytes into an Article (or raises the Problem that
keeps it out), so a new front-matter field touches this module only: a field on
`Article` and one line in `article_from_front_matter`. The store keeps each Article
as a JSON record (`to_record`/`from_record`, driven by the dataclass fields).
`secured` is never read into the Article, and its values are cut out of every message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from feedservice.ingest.clean import (
    canonical_identity,
    clean_url,
    parse_date,
    plain_text,
    slugify,
    truncate,
    type_name,
)
from feedservice.ingest.frontmatter import FrontMatter, split_front_matter
from feedservice.ingest.problem import Problem, redact, secret_leaves

MAX_TITLE_CHARS = 300
MAX_EXCERPT_CHARS = 2000
MAX_SHORT_TEXT = 200
MAX_TOPICS = 50
MAX_TOPIC_CHARS = 100
MAX_TOPIC_ENTRIES = 1000  # list entries read before giving up on finding MAX_TOPICS names
MAX_IMAGES = 10
MAX_RELATED = 20
_DOMAIN = re.compile(r"[A-Za-z0-9.-]{1,253}")
_WHOLE_NUMBER = re.compile(r"\s*-?\d{1,18}\s*")


@dataclass(frozen=True, slots=True)
class Image:
    url: str
    width: int | None = None
    height: int | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    domain: str | None = None
    image: Image | None = None

    @property
    def url(self) -> str | None:
        return f"https://{self.domain}/" if self.domain else None


@dataclass(frozen=True, slots=True)
class RelatedArticle:
    title: str
    link: str
    provider: str | None = None
    published: datetime | None = None


@dataclass(frozen=True, slots=True)
class Article:
    """A cleaned article, ready for every output format. Never holds `secured`."""

    identity: str  # canonical URL: RSS guid, Atom id, JSON Feed id
    link: str
    title: str
    published: datetime  # always timezone-aware
    source: str  # seed path relative to the seed directory
    excerpt: str = ""
    is_draft: bool = False
    topics: tuple[str, ...] = ()
    category: str | None = None
    kind: str | None = None  # the `type` field
    quality: int | None = None
    heat: int | None = None
    provider: Provider | None = None
    images: tuple[Image, ...] = ()
    related: tuple[RelatedArticle, ...] = ()
    original_url: str | None = None
    amp_url: str | None = None
    cdn_amp_url: str | None = None
    updated: datetime | None = None  # the seed's own last change (issue 17 fills it)
    expires: datetime | None = None  # Hugo's `expiryDate`: out of every feed from then


@dataclass(frozen=True, slots=True)
class Parsed:
    article: Article
    warnings: tuple[Problem, ...] = ()


def parse_seed(data: bytes, source: str) -> Parsed:
    """Bytes of one seed file → a clean Article; raises the first Problem that keeps it out."""
    article, problems = read_article(data, source)
    if article is None:
        raise next(problem for problem in problems if problem.fatal)
    return Parsed(article, problems)


def read_article(data: bytes, source: str) -> tuple[Article | None, tuple[Problem, ...]]:
    """Every problem of one seed file, not only the first, and its Article when none of
    them keeps it out. Never raises for bad content."""
    try:
        front = split_front_matter(data, source)
    except Problem as problem:
        return None, (problem,)
    return article_from_front_matter(front, source, secret_leaves(front.data.get("secured")))


def article_from_front_matter(
    front: FrontMatter, source: str, secrets: list[str]
) -> tuple[Article | None, tuple[Problem, ...]]:
    data = front.data
    problems = list(front.repairs)

    def fail(key: str, message: str) -> Problem:
        return Problem(source, key, redact(message, secrets), front.line_of(key))

    def warn(key: str, message: str) -> None:
        problems.append(Problem(source, key, redact(message, secrets), front.line_of(key), False))

    def field(read: Callable[[], Any], fallback: Any = None) -> Any:
        try:
            return read()
        except Problem as problem:  # recorded; the other fields are still checked
            problems.append(problem)
            return fallback

    title = field(lambda: _required_text(data, "title", fail, MAX_TITLE_CHARS, warn))
    published = field(lambda: _required_date(data, "publishedDateTime", fail))
    web_url = _optional_url(data, "webUrl", warn)
    original_url = _optional_url(data, "originalUrl", warn)
    link = web_url or original_url
    if link is None:
        problems.append(
            fail("webUrl", "a link is required: set webUrl or originalUrl to an http(s) URL")
        )
    values = {
        "excerpt": field(lambda: _optional_text(data, "excerpt", fail, MAX_EXCERPT_CHARS, warn)),
        "is_draft": not field(lambda: _published_flag(data.get("published", True), fail), True),
        "topics": field(lambda: _topics(data.get("topics"), fail, warn), ()),
        "category": field(lambda: _optional_text(data, "category", fail, MAX_SHORT_TEXT, warn)),
        "kind": field(lambda: _optional_text(data, "type", fail, MAX_SHORT_TEXT, warn)),
        "quality": field(lambda: _optional_int(data, "quality", fail)),
        "heat": field(lambda: _optional_int(data, "heat", fail)),
        "provider": field(lambda: _provider(data.get("provider"), fail, warn)),
        "images": field(lambda: _images(data.get("images"), "images", fail, warn), ()),
        "related": _related(data.get("related"), warn),
        "original_url": original_url,
        "amp_url": _optional_url(data, "ampWebUrl", warn),
        "cdn_amp_url": _optional_url(data, "cdnAmpWebUrl", warn),
        "expires": field(lambda: _optional_date(data, "expiryDate", fail)),
    }
    if any(problem.fatal for problem in problems):
        return None, tuple(problems)
    article = Article(
        identity=canonical_identity(link),  # type: ignore[arg-type]
        link=link,  # type: ignore[arg-type]
        title=title,
        published=published,
        source=source,
        excerpt=values.pop("excerpt") or "",
        **values,
    )
    return article, tuple(problems)


# --- field readers: `fail(key, message)` makes the Problem to raise; `warn` records one ----


def _required_text(data: dict[str, Any], key: str, fail: Any, limit: int, warn: Any) -> str:
    if data.get(key) is None:
        raise fail(key, "is required")
    text = _optional_text(data, key, fail, limit, warn)
    if not text:
        raise fail(key, "is empty once markup and control characters are removed")
    return text


def _optional_text(data: dict[str, Any], key: str, fail: Any, limit: int, warn: Any) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise fail(key, f"must be text, got {type_name(value)}")
    text = plain_text(str(value))
    if len(text) > limit:
        warn(key, f"longer than {limit} characters; truncated")
        text = truncate(text, limit)
    return text or None


def _optional_int(data: dict[str, Any], key: str, fail: Any) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        raise fail(key, "must be a whole number, got true/false")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value):
        return int(value)
    raise fail(key, f"must be a whole number, got {type_name(value)}")


def _published_flag(value: Any, fail: Any) -> bool:
    if isinstance(value, bool):
        return value
    words = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
    if isinstance(value, str) and value.strip().lower() in words:
        return words[value.strip().lower()]
    raise fail("published", f"must be true or false, got {type_name(value)}")


def _required_date(data: dict[str, Any], key: str, fail: Any) -> datetime:
    value = data.get(key)
    if value is None:
        raise fail(key, "is required")
    try:
        return parse_date(value)
    except ValueError as error:
        raise fail(key, str(error)) from None


def _optional_date(data: dict[str, Any], key: str, fail: Any) -> datetime | None:
    return None if data.get(key) is None else _required_date(data, key, fail)


def _optional_url(data: dict[str, Any], key: str, warn: Any) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    try:
        return clean_url(value)
    except ValueError as error:
        warn(key, f"{error}; link dropped")
        return None


def _topics(value: Any, fail: Any, warn: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]  # a single topic written without a list
    if not isinstance(value, list):
        raise fail("topics", f"must be a list of topic names, got {type_name(value)}")
    if len(value) > MAX_TOPIC_ENTRIES:
        warn("topics", f"more than {MAX_TOPIC_ENTRIES} entries; the rest are ignored")
    topics: dict[str, str] = {}  # slug -> the first name with that slug
    for item in value[:MAX_TOPIC_ENTRIES]:
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            warn("topics", f"ignored a topic that is {type_name(item)}, not text")
            continue
        name = truncate(plain_text(str(item)), MAX_TOPIC_CHARS)
        if not name or slugify(name) in topics:
            continue
        if len(topics) == MAX_TOPICS:
            warn("topics", f"more than {MAX_TOPICS} topics; the rest are ignored")
            break
        topics[slugify(name)] = name
    return tuple(topics.values())


def _provider(value: Any, fail: Any, warn: Any) -> Provider | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise fail("provider", f"must be a mapping with name and domain, got {type_name(value)}")
    name = value.get("name")
    if not isinstance(name, str) or not plain_text(name):
        return None
    domain = value.get("domain")
    if isinstance(domain, str) and _DOMAIN.fullmatch(domain.strip()):
        domain = domain.strip().lower()
    else:
        domain = None
    images = _images(value.get("images"), "provider", fail, warn)
    return Provider(
        truncate(plain_text(name), MAX_SHORT_TEXT), domain, images[0] if images else None
    )


def _images(value: Any, key: str, fail: Any, warn: Any) -> tuple[Image, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise fail(key, f"images must be a list, got {type_name(value)}")
    images: list[Image] = []
    for item in value[:MAX_IMAGES]:
        if not isinstance(item, dict):
            continue
        try:
            url = clean_url(item.get("url"))
        except ValueError as error:
            warn(key, f"image url {error}; image dropped")
            continue
        title = item.get("title")
        title = truncate(plain_text(title), MAX_TITLE_CHARS) if isinstance(title, str) else None
        images.append(
            Image(url, _dimension(item.get("width")), _dimension(item.get("height")), title or None)
        )
    return tuple(images)


def _dimension(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 100_000:
        return value
    return None


def _related(value: Any, warn: Any) -> tuple[RelatedArticle, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        warn("related", "must be a list of articles; ignored")
        return ()
    related: list[RelatedArticle] = []
    for item in value[:MAX_RELATED]:
        if not isinstance(item, dict):
            continue
        title = item.get("title")
        if not isinstance(title, str) or not plain_text(title):
            continue
        link = None
        for key in ("webUrl", "originalUrl"):
            try:
                link = clean_url(item.get(key))
                break
            except ValueError:
                continue
        if link is None:
            shown = plain_text(title)[:60]
            warn("related", f"related article {shown!r} has no usable link; dropped")
            continue
        provider = item.get("provider")
        name = provider.get("name") if isinstance(provider, dict) else None
        try:
            published = parse_date(item.get("publishedDateTime"))
        except ValueError:
            published = None
        related.append(
            RelatedArticle(
                truncate(plain_text(title), MAX_TITLE_CHARS),
                link,
                plain_text(name) or None if isinstance(name, str) else None,
                published,
            )
        )
    return tuple(related)
