"""Subscriber filters: a feed URL's query string in, one frozen, canonical filter set out.

Every spelling of a filter set has one canonical query (known keys only, sorted, values
normalised, de-duplicated, defaults dropped), so every cache and reader shares one entry:
the grammar (urls.py) redirects any other spelling to it. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote_plus

from feedservice.ingest.clean import domain_name, slugify, utc_micros
from feedservice.store import search

MAX_VALUES = 20  # parameter values per URL (each topic of `topics=a,b` counts)
MAX_Q_CHARS = search.MAX_QUERY_CHARS
MAX_QUALITY = 1_000_000
LIST_KEYS = ("all", "exclude", "provider", "topics")  # comma-separated and repeatable
KEYS = frozenset((*LIST_KEYS, "limit", "min_quality", "page", "q", "since"))
_DIGITS = re.compile(r"[0-9]{1,18}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")  # an escaped byte that is not UTF-8
_DATE_ONLY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
PAST_LAST = 10**18  # a page number this large is past the last page of any feed


class BadRequest(ValueError):
    """A URL of the grammar with a bad parameter: answered 400 with this message."""


@dataclass(frozen=True, slots=True)
class Filters:
    """What a subscriber asked of a feed; the empty set is the feed itself."""

    topics: tuple[str, ...] = ()  # slugs: any of them
    all: tuple[str, ...] = ()  # slugs: every one of them
    exclude: tuple[str, ...] = ()  # slugs: none of them
    provider: tuple[str, ...] = ()  # domains: any of them
    min_quality: int = 0
    since: str = ""  # RFC 3339, UTC, `Z`
    q: str = ""  # search words, normalised
    limit: int = 0  # items per page; 0: the feed's own

    def __bool__(self) -> bool:
        """Whether anything but paging is asked: a filtered feed is not a WebSub topic."""
        return self != NO_FILTERS

    @property
    def since_micros(self) -> int | None:
        return utc_micros(datetime.fromisoformat(self.since)) if self.since else None

    def query(self, page: int = 1) -> str:
        """The canonical query string (without `?`) of these filters on page `page`."""
        pairs = [
            ("all", ",".join(self.all)),
            ("exclude", ",".join(self.exclude)),
            ("limit", str(self.limit) if self.limit else ""),
            ("min_quality", str(self.min_quality) if self.min_quality else ""),
            ("page", str(page) if page > 1 else ""),
            *(("provider", domain) for domain in self.provider),
            ("q", self.q),
            ("since", self.since),
            ("topics", ",".join(self.topics)),
        ]
        return "&".join(f"{key}={quote_plus(value, safe=',:')}" for key, value in pairs if value)

    def describe(self) -> str:
        """In words, for a filtered feed's title."""
        lists = [(key, getattr(self, key)) for key in LIST_KEYS]
        parts = [f"{key}: {', '.join(values)}" for key, values in lists if values]
        parts += [f"{key}: {getattr(self, key)}" for key in ("min_quality", "since", "q")]
        return "; ".join(part for part in parts if not part.endswith((": 0", ": ")))


NO_FILTERS = Filters()


def parse_query(query: str) -> tuple[Filters, int, bool]:
    """(filters, page, canonical) from a raw query string; `canonical` is whether the
    query is already spelled canonically. Raises BadRequest naming the key for anything
    unknown or malformed."""
    try:
        text = query.encode("latin-1").decode("utf-8") if not query.isascii() else query
    except UnicodeError:
        raise BadRequest("the query must be UTF-8") from None
    try:
        pairs = parse_qsl(
            text, keep_blank_values=True, errors="surrogateescape", max_num_fields=4 * MAX_VALUES
        )
    except ValueError:
        raise BadRequest(f"at most {MAX_VALUES} parameter values") from None
    found: dict[str, list[str]] = {}
    for key, value in pairs:
        if key not in KEYS:
            shown = _SURROGATE.sub("?", _CONTROL.sub("?", key))[:40]
            raise BadRequest(f"unknown parameter {shown!r}; known: {', '.join(sorted(KEYS))}")
        if _CONTROL.search(value):
            raise BadRequest(f"{key} must not hold control characters")
        if _SURROGATE.search(value):
            raise BadRequest(f"{key} must be UTF-8")
        if key not in LIST_KEYS and key in found:
            raise BadRequest(f"{key} is given more than once")
        found.setdefault(key, []).append(value)
    values = {key: _items(found.get(key, ())) for key in LIST_KEYS}
    if sum(map(len, values.values())) + len(found.keys() - LIST_KEYS) > MAX_VALUES:
        raise BadRequest(f"at most {MAX_VALUES} parameter values")
    one = {key: found[key][0].strip() for key in found if key not in LIST_KEYS}
    one["page"] = found["page"][0] if "page" in found else ""
    filters = Filters(
        topics=_slugs(values["topics"]),
        all=_slugs(values["all"]),
        exclude=_slugs(values["exclude"]),
        provider=_domains(values["provider"]),
        min_quality=_number("min_quality", one.get("min_quality", ""), 0, MAX_QUALITY),
        since=_since(one.get("since", "")),
        q=_words(one.get("q", "")),
        limit=_number("limit", one.get("limit", ""), 1, 10**6),
    )
    page = page_number(one["page"] if "page" in found else None)
    # `page` alone is taken in any spelling (`page=1`, `page=02`), as it always was.
    alone = found.keys() <= {"page"}
    return filters, page, alone or page == PAST_LAST or filters.query(page) == query


def _items(values: Iterable[str]) -> list[str]:
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def _slugs(names: list[str]) -> tuple[str, ...]:
    """Topic names or slugs → sorted unique slugs (`Machine Learning` → `machine-learning`)."""
    return tuple(sorted({slugify(name) for name in names}))


def _domains(names: list[str]) -> tuple[str, ...]:
    found = set()
    for name in names:
        domain = domain_name(name)
        if domain is None:
            raise BadRequest(f"provider {name[:80]!r} is not a domain name")
        found.add(domain)
    return tuple(sorted(found))


def _number(key: str, text: str, low: int, high: int) -> int:
    """A whole number from `low` to `high`; empty is the default (0). `min_quality=0` is
    the default too, so it is dropped."""
    if not text:
        return 0
    if not text.isascii() or not text.isdigit() or not low <= int(text[:18]) <= high:
        raise BadRequest(f"{key} must be a whole number from {low} to {high}")
    return int(text)


def _since(text: str) -> str:
    """An RFC 3339 date (or a plain date: midnight UTC) → its UTC `Z` form."""
    if not text:
        return ""
    try:
        when = datetime.fromisoformat(text.upper() if len(text) <= 40 else "?")
    except ValueError:
        raise BadRequest("since must be an RFC 3339 date, like 2026-01-31T08:00:00Z") from None
    if when.tzinfo is None and not _DATE_ONLY.fullmatch(text):
        raise BadRequest("since needs a time zone offset, like 2026-01-31T08:00:00Z")
    if when.year < 1970:
        raise BadRequest("since must be after 1970")
    when = when.replace(tzinfo=when.tzinfo or UTC).astimezone(UTC)
    fraction = f".{when.microsecond:06d}".rstrip("0") if when.microsecond else ""
    return when.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def _words(text: str) -> str:
    """`q` in its one spelling (store/search.py): words, "phrases", -exclusions, sorted."""
    if not text:
        return ""
    try:
        return search.parse_query(text).canonical
    except search.SearchError as error:
        raise BadRequest(str(error)) from None


def page_number(value: str | None) -> int:
    """`page`: digits only; a number past every feed's last page is PAST_LAST."""
    if value is None:
        return 1
    if not value.isascii() or not value.isdigit():
        raise BadRequest("page must be a whole number from 1")
    if not _DIGITS.fullmatch(value):
        return PAST_LAST
    number = int(value)
    if number < 1:
        raise BadRequest("page must be a whole number from 1")
    return number
