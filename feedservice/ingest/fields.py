"""Front-matter field readers shared by every kind of seed file: each reads one value,
cleans it, and either returns it or raises the Problem `fail(key, message)` makes
(`warn(key, message)` records a finding that does not keep the file out)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from feedservice.ingest.clean import clean_url, parse_date, plain_text, slugify, truncate, type_name
from feedservice.ingest.frontmatter import FrontMatter
from feedservice.ingest.model import Image, Provider, RelatedArticle
from feedservice.ingest.problem import Problem, redact

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


class Findings:
    """Every problem of one file, and the `fail`/`warn` the readers below take."""

    def __init__(self, front: FrontMatter, source: str, secrets: list[str]) -> None:
        self.front, self.source, self.secrets = front, source, secrets
        self.problems: list[Problem] = list(front.repairs)

    def fail(self, key: str, message: str) -> Problem:
        line = self.front.line_of(key)
        return Problem(self.source, key, redact(message, self.secrets), line)

    def warn(self, key: str, message: str) -> None:
        line = self.front.line_of(key)
        self.problems.append(Problem(self.source, key, redact(message, self.secrets), line, False))

    def field(self, read: Callable[[], Any], fallback: Any = None) -> Any:
        """`read()`, or `fallback` once its Problem is recorded (so every field is checked)."""
        try:
            return read()
        except Problem as problem:
            self.problems.append(problem)
            return fallback

    @property
    def fatal(self) -> bool:
        return any(problem.fatal for problem in self.problems)


def required_text(data: dict[str, Any], key: str, fail: Any, limit: int, warn: Any) -> str:
    if data.get(key) is None:
        raise fail(key, "is required")
    text = optional_text(data, key, fail, limit, warn)
    if not text:
        raise fail(key, "is empty once markup and control characters are removed")
    return text


def optional_text(data: dict[str, Any], key: str, fail: Any, limit: int, warn: Any) -> str | None:
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


def optional_int(data: dict[str, Any], key: str, fail: Any) -> int | None:
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


def published_flag(value: Any, fail: Any, key: str = "published") -> bool:
    if isinstance(value, bool):
        return value
    words = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
    if isinstance(value, str) and value.strip().lower() in words:
        return words[value.strip().lower()]
    raise fail(key, f"must be true or false, got {type_name(value)}")


def required_date(data: dict[str, Any], key: str, fail: Any) -> datetime:
    value = data.get(key)
    if value is None:
        raise fail(key, "is required")
    try:
        return parse_date(value)
    except ValueError as error:
        raise fail(key, str(error)) from None


def optional_date(data: dict[str, Any], key: str, fail: Any) -> datetime | None:
    return None if data.get(key) is None else required_date(data, key, fail)


def optional_url(data: dict[str, Any], key: str, warn: Any) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    try:
        return clean_url(value)
    except ValueError as error:
        warn(key, f"{error}; link dropped")
        return None


def topics(value: Any, fail: Any, warn: Any, key: str = "topics") -> tuple[str, ...]:
    """Topic names from a list (or one name), de-duplicated by slug, at most MAX_TOPICS."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]  # a single topic written without a list
    if not isinstance(value, list):
        raise fail(key, f"must be a list of topic names, got {type_name(value)}")
    if len(value) > MAX_TOPIC_ENTRIES:
        warn(key, f"more than {MAX_TOPIC_ENTRIES} entries; the rest are ignored")
    found: dict[str, str] = {}  # slug -> the first name with that slug
    for item in value[:MAX_TOPIC_ENTRIES]:
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            warn(key, f"ignored a topic that is {type_name(item)}, not text")
            continue
        name = truncate(plain_text(str(item)), MAX_TOPIC_CHARS)
        if not name or slugify(name) in found:
            continue
        if len(found) == MAX_TOPICS:
            warn(key, f"more than {MAX_TOPICS} topics; the rest are ignored")
            break
        found[slugify(name)] = name
    return tuple(found.values())


def provider(value: Any, fail: Any, warn: Any) -> Provider | None:
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
    found = images(value.get("images"), "provider", fail, warn)
    return Provider(truncate(plain_text(name), MAX_SHORT_TEXT), domain, found[0] if found else None)


def images(value: Any, key: str, fail: Any, warn: Any) -> tuple[Image, ...]:
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
            Image(url, dimension(item.get("width")), dimension(item.get("height")), title or None)
        )
    return tuple(images)


def dimension(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 100_000:
        return value
    return None


def related(value: Any, warn: Any) -> tuple[RelatedArticle, ...]:
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
