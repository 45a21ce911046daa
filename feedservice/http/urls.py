"""The one URL grammar: every public URL is parsed and built here.

The routes, the renderers' links, the metrics labels and the static export all go
through `parse` and the builders below, so a URL can never mean two things.

    /                                 the HTML index
    /<kind>/[?page=N][&q=words]       the HTML list of every topic, configured or provider feed
    /<kind>/<name>.<fmt>[?filters]    a feed: kind topics|feeds|providers, fmt rss|atom|json
    /<kind>/<name>/[?filters]         the feed's HTML page, with its filter form
    /search.<fmt>?q=words[&filters]   a search feed over every article; /search/ its page
    /<which>.opml[?format=rss]        OPML lists: which feeds|topics|providers

Filters (filters.py): topics, all, exclude, provider, min_quality, since, q, limit, page.
A topic named by its display name or in another case (`/topics/AI.rss`), a provider's
domain in another spelling, or filters in another spelling raise `Moved` with the
canonical URL (answered 301). A `Route.key` is the URL in its one canonical form (path
and query); the store and the memos keep responses under it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, quote_plus

from feedservice.http.filters import (
    NO_FILTERS,
    PAST_LAST,
    BadRequest,
    Filters,
    page_number,
    parse_query,
)
from feedservice.ingest.clean import domain_name, slugify

__all__ = ["NO_FILTERS", "PAST_LAST", "BadRequest", "Filters", "Moved", "Route", "parse"]
KINDS = ("topics", "feeds", "providers")
SEARCH = "search"
FORMATS = ("rss", "atom", "json")
OPML_FORMATS = ("atom", "rss")
NAME = r"[a-z0-9][a-z0-9._-]{0,252}"  # a topic slug, a feed name or a provider's domain
_FEED = re.compile(rf"/(topics|feeds|providers)/({NAME})\.(rss|atom|json)")
_PAGE = re.compile(rf"/(topics|feeds|providers)/({NAME})/")
_SEARCH = re.compile(r"/search(?:\.(rss|atom|json)|/)")
_LOOSE = re.compile(r"/(topics|providers)/([^/]{1,300}?)(?:\.(rss|atom|json)|/)")
_OPML = re.compile(r"/(feeds|topics|providers)\.opml")
_LIST = re.compile(r"/(topics|feeds|providers)/")
MAX_QUERY_CHARS = 200


class Moved(Exception):
    """A URL of the grammar in a non-canonical spelling: answered 301 to `self.path`."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


@dataclass(frozen=True, slots=True)
class Route:
    view: str  # "index", "list", "feed", "page" (a feed's HTML page) or "opml"
    kind: str = ""  # topics, feeds, providers or search
    name: str = ""
    fmt: str = "html"
    number: int = 1
    words: str = ""  # a list's search: names containing these words
    filters: Filters = field(default=NO_FILTERS)

    @property
    def feed_key(self) -> str:
        """The stored feed this route reads: a search reads `feeds/all`, every article."""
        return "feeds/all" if self.kind == SEARCH else f"{self.kind}/{self.name}"

    @property
    def subscriber(self) -> bool:
        """Shaped by the subscriber (filters or search): rendered on request, no WebSub."""
        return self.kind == SEARCH or bool(self.filters)

    @property
    def key(self) -> str:
        """The canonical path and query: the store's key for this response."""
        if self.view == "feed":
            return feed_path(self.kind, self.name, self.fmt, self.number, self.filters)
        if self.view == "page":
            return page_path(self.kind, self.name, self.number, self.filters)
        if self.view == "opml":
            return opml_path(self.kind, self.fmt)
        if self.view == "list":
            return list_path(self.kind, self.number, self.words)
        return "/"

    @property
    def label(self) -> tuple[str, str]:
        """(route, format) for metrics: URL shapes, never raw paths."""
        if self.kind == SEARCH:
            return ("/search", self.fmt)
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
    ours. Raises BadRequest for a known path with a bad parameter, Moved for one spelled
    otherwise than canonically."""
    if path == "/":
        return Route("index")
    match = _FEED.fullmatch(path) or _PAGE.fullmatch(path)
    if match is not None:
        kind, name, fmt = (*match.groups(), "html")[:3]
        return _feed_route(kind, name, fmt, query)
    match = _SEARCH.fullmatch(path)
    if match is not None:
        return _feed_route(SEARCH, "", match.group(1) or "html", query)
    match = _LIST.fullmatch(path)
    if match is not None:
        words_in = " ".join(_params(query).get("q", "").split()).lower() if query else ""
        if len(words_in) > MAX_QUERY_CHARS:
            raise BadRequest(f"q must be at most {MAX_QUERY_CHARS} characters")
        number = page_number(_params(query).get("page")) if query else 1
        return Route("list", match.group(1), "", "html", number, words_in)
    match = _OPML.fullmatch(path)
    if match is not None:
        fmt = _params(query).get("format", "atom")
        if fmt not in OPML_FORMATS:
            raise BadRequest("format must be atom or rss")
        return Route("opml", match.group(1), "", fmt)
    match = _LOOSE.fullmatch(path)
    if match and path.isprintable() and not any(part in path for part in ("..", "\\", "%")):
        # a topic by its display name, a provider's domain in capitals
        kind, name, fmt = match.groups()
        canonical = slugify(name) if kind == "topics" else domain_name(name)
        if canonical and re.fullmatch(NAME, canonical):
            raise Moved(_feed_route(kind, canonical, fmt or "html", query, moved=True).key)
    return None


def _feed_route(kind: str, name: str, fmt: str, query: str, moved: bool = False) -> Route:
    view = "page" if fmt == "html" else "feed"
    if not query:
        return Route(view, kind, name, fmt)
    filters, number, canonical = parse_query(query)
    route = Route(view, kind, name, fmt, number, filters=filters)
    if not canonical and not moved:
        raise Moved(route.key)
    return route


def without_limit(route: Route) -> Route:
    """The route with the feed's own limit: `limit=` equal to it is the default."""
    return replace(route, filters=replace(route.filters, limit=0))


def _params(query: str) -> dict[str, str]:
    pairs = parse_qsl(query, keep_blank_values=True)
    found: dict[str, str] = {}
    for key, value in pairs:
        if key in found:
            raise BadRequest(f"{key} is given more than once")
        found[key] = value
    return found


def _query(number: int, filters: Filters) -> str:
    query = filters.query(number)
    return f"?{query}" if query else ""


def feed_path(
    kind: str, name: str, fmt: str, number: int = 1, filters: Filters = NO_FILTERS
) -> str:
    if kind == SEARCH:
        return f"/search.{fmt}{_query(number, filters)}"
    return f"/{kind}/{name}.{fmt}{_query(number, filters)}"


def page_path(kind: str, name: str, number: int = 1, filters: Filters = NO_FILTERS) -> str:
    if kind == SEARCH:
        return f"/search/{_query(number, filters)}"
    return f"/{kind}/{name}/{_query(number, filters)}"


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
