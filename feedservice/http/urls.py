"""The one URL grammar: every public URL is parsed and built here.

The routes, the renderers' links, the metrics labels and the static export all go
through `parse` and the builders below, so a URL can never mean two things.

    /                               the HTML index
    /<kind>/[?page=N][&q=words]     the HTML list of every topic or configured feed
    /<kind>/<name>.<fmt>[?page=N]   a feed: kind topics|feeds, fmt rss|atom|json
    /<kind>/<name>/[?page=N]        the feed's HTML page
    /<which>.opml[?format=rss]      OPML lists: which feeds|topics

A `Route.key` is the URL in its one canonical form (path and query); the store keeps
rendered documents under it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote_plus

KINDS = ("topics", "feeds")
FORMATS = ("rss", "atom", "json")
OPML_FORMATS = ("atom", "rss")
NAME = r"[a-z0-9][a-z0-9_-]{0,127}"
_FEED = re.compile(rf"/(topics|feeds)/({NAME})\.(rss|atom|json)")
_PAGE = re.compile(rf"/(topics|feeds)/({NAME})/")
_OPML = re.compile(r"/(feeds|topics)\.opml")
_LIST = re.compile(r"/(topics|feeds)/")
MAX_QUERY_CHARS = 200
_DIGITS = re.compile(r"[0-9]{1,18}")
PAST_LAST = 10**18  # a page number this large is past the last page of any feed


class BadRequest(ValueError):
    """A URL of the grammar with a bad parameter: answered 400 with this message."""


@dataclass(frozen=True, slots=True)
class Route:
    view: str  # "index", "list", "feed", "page" (a feed's HTML page) or "opml"
    kind: str = ""
    name: str = ""
    fmt: str = "html"
    number: int = 1
    words: str = ""  # a list's search: names containing these words

    @property
    def feed_key(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def key(self) -> str:
        """The canonical path and query: the store's key for this response."""
        if self.view == "feed":
            return feed_path(self.kind, self.name, self.fmt, self.number)
        if self.view == "page":
            return page_path(self.kind, self.name, self.number)
        if self.view == "opml":
            return opml_path(self.kind, self.fmt)
        if self.view == "list":
            return list_path(self.kind, self.number, self.words)
        return "/"

    @property
    def label(self) -> tuple[str, str]:
        """(route, format) for metrics: URL shapes, never raw paths."""
        if self.view == "feed":
            return f"/{self.kind}/<name>", self.fmt
        if self.view == "page":
            return f"/{self.kind}/<name>/", "html"
        if self.view == "opml":
            return f"/{self.kind}.opml", "opml"
        if self.view == "list":
            return f"/{self.kind}/", "html"
        return "/", "html"


def parse(path: str, query: str = "") -> Route | None:
    """The route for a request path and raw query string; None if the path is not one of
    ours. Raises BadRequest for a known path with a bad parameter."""
    if path == "/":
        return Route("index")
    match = _FEED.fullmatch(path)
    if match is not None:
        kind, name, fmt = match.groups()
        return Route("feed", kind, name, fmt, _page_number(query))
    match = _PAGE.fullmatch(path)
    if match is not None:
        kind, name = match.groups()
        return Route("page", kind, name, "html", _page_number(query))
    match = _LIST.fullmatch(path)
    if match is not None:
        words = " ".join(_params(query).get("q", "").split()).lower() if query else ""
        if len(words) > MAX_QUERY_CHARS:
            raise BadRequest(f"q must be at most {MAX_QUERY_CHARS} characters")
        return Route("list", match.group(1), "", "html", _page_number(query), words)
    match = _OPML.fullmatch(path)
    if match is not None:
        fmt = _params(query).get("format", "atom")
        if fmt not in OPML_FORMATS:
            raise BadRequest("format must be atom or rss")
        return Route("opml", match.group(1), "", fmt)
    return None


def _params(query: str) -> dict[str, str]:
    pairs = parse_qsl(query, keep_blank_values=True)
    found: dict[str, str] = {}
    for key, value in pairs:
        if key in found:
            raise BadRequest(f"{key} is given more than once")
        found[key] = value
    return found


def _page_number(query: str) -> int:
    """`page` from a query: digits only; a number past every feed's last page is PAST_LAST."""
    value = _params(query).get("page") if query else None
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


def _page_query(number: int) -> str:
    return f"?page={number}" if number > 1 else ""


def feed_path(kind: str, name: str, fmt: str, number: int = 1) -> str:
    return f"/{kind}/{name}.{fmt}{_page_query(number)}"


def page_path(kind: str, name: str, number: int = 1) -> str:
    return f"/{kind}/{name}/{_page_query(number)}"


def opml_path(which: str, fmt: str = "atom") -> str:
    return f"/{which}.opml" + ("?format=rss" if fmt == "rss" else "")


def list_path(kind: str, number: int = 1, words: str = "") -> str:
    query = "&".join(
        part
        for part in (
            f"page={number}" if number > 1 else "",
            f"q={quote_plus(words)}" if words else "",
        )
        if part
    )
    return f"/{kind}/" + (f"?{query}" if query else "")
