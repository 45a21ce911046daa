"""Where a static site publishes a page: what its path says, and its permalink rule.

A rule is a Jekyll-style pattern (`/:categories/:year/:month/:day/:title/`), one of
Jekyll's named styles, or `hugo`: Hugo's default, the page's directories and its
`slug` (else its file or bundle name), lower-cased. Date parts come from the publish
time in the site's timezone, as Jekyll fills them.
"""

from __future__ import annotations

import functools
import re
from datetime import date, datetime
from typing import Any, NamedTuple
from urllib.parse import quote
from zoneinfo import ZoneInfo

STYLES = {  # Jekyll's named styles, and Hugo's default
    "date": "/:categories/:year/:month/:day/:title:output_ext",
    "pretty": "/:categories/:year/:month/:day/:title/",
    "ordinal": "/:categories/:year/:y_day/:title:output_ext",
    "weekdate": "/:categories/:year/W:week/:short_day/:title:output_ext",
    "none": "/:categories/:title:output_ext",
    "hugo": "/:sections/:slugorfilename/",
}
_DATE_PARTS = {
    "year": "%Y",
    "month": "%m",
    "day": "%d",
    "short_year": "%y",
    "hour": "%H",
    "minute": "%M",
    "second": "%S",
    "y_day": "%j",
    "week": "%V",
    "short_day": "%a",
    "long_day": "%A",
    "short_month": "%b",
    "long_month": "%B",
}
_PLACE_PARTS = ("title", "slug", "name", "categories", "output_ext", "i_month", "i_day")
_HUGO_PARTS = ("section", "sections", "filename", "slugorfilename", "contentbasename")
TOKENS = frozenset((*_DATE_PARTS, *_PLACE_PARTS, *_HUGO_PARTS))
_TOKEN = re.compile(r":([a-z_]+)")
_POST_NAME = re.compile(r"(\d{2,4})-(\d{1,2})-(\d{1,2})-(.+)")
_PRETTY = re.compile(r"[^\w.~!$&'()+,;=@]+|_+")  # Jekyll's slugify, `pretty` mode
_PLAIN = re.compile(r"[^\w]+|_+")  # Jekyll's slugify, default mode
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"


class Site(NamedTuple):
    """What parsing a static-site page needs of the site settings."""

    base_url: str = "http://127.0.0.1:8080"
    permalink: str | None = None  # a pattern or style; None: each generator's default
    timezone: str = "UTC"
    taxonomies: tuple[str, ...] = ()

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.timezone)


@functools.cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def site_of(config: Any) -> Site:
    """The parse-relevant settings of a Config: when they change, every file is re-read."""
    return Site(config.base_url, config.permalink, config.timezone, tuple(config.taxonomies))


class Place(NamedTuple):
    """What a file's path says: Jekyll's `_posts/` name and categories, Hugo's sections."""

    directories: tuple[str, ...]  # under the seed directory (or its `content/`)
    categories: tuple[str, ...]  # Jekyll: the directories above `_posts/`
    name: str  # the file name without extension (and Jekyll's date), or the bundle's
    date: date | None  # from a Jekyll post's `YYYY-MM-DD-` name
    post: bool  # under `_posts/` or `_drafts/`
    in_drafts: bool
    html: bool  # `.html`/`.htm`: the body is HTML, not Markdown


def place_of(source: str) -> Place:
    *directories, filename = source.split("/")
    stem, dot, extension = filename.rpartition(".")
    stem = stem if dot else filename
    if directories[:1] == ["content"]:
        directories = directories[1:]  # a Hugo site's content directory
    marks = [n for n, part in enumerate(directories) if part in ("_posts", "_drafts")]
    categories = tuple(directories[: marks[-1]]) if marks else ()
    in_drafts = bool(marks) and directories[marks[-1]] == "_drafts"
    found = _POST_NAME.fullmatch(stem) if marks else None
    day = None
    if found is not None:
        try:
            day = date(*(int(part) for part in found.groups()[:3]))
            stem = found.group(4)
        except ValueError:
            pass  # not a date: the name stays whole
    if stem == "index" and directories and not marks:
        stem, directories = directories[-1], directories[:-1]  # a Hugo page bundle
    html = extension.lower() in ("html", "htm")
    return Place(tuple(directories), categories, stem, day, bool(marks), in_drafts, html)


def expand(
    rule: str,
    place: Place,
    published: datetime,
    *,
    slug: str | None,
    categories: tuple[str, ...],
) -> str:
    """The path (from `/`, percent-encoded) that `rule` gives this page."""
    pattern = STYLES.get(rule, rule)
    title = slug or place.name
    values = {
        "title": _PRETTY.sub("-", title).strip("-"),
        "slug": _PLAIN.sub("-", title).strip("-").lower(),
        "name": _PLAIN.sub("-", place.name).strip("-").lower(),
        "categories": "/".join(dict.fromkeys(c.lower() for c in categories)),
        "output_ext": ".html",
        "i_month": str(published.month),
        "i_day": str(published.day),
        "section": place.directories[0] if place.directories else "",
        "sections": "/".join(place.directories),
        "filename": place.name,
        "contentbasename": place.name,
        "slugorfilename": slug or place.name,
    }

    def fill(match: re.Match[str]) -> str:
        token = match.group(1)
        if token in _DATE_PARTS:
            return published.strftime(_DATE_PARTS[token])
        return values.get(token, match.group(0))

    path = _TOKEN.sub(fill, pattern)
    if rule == "hugo":
        path = path.lower().replace(" ", "-")
    path = re.sub(r"/{2,}", "/", "/" + path)
    return quote(path, safe=_PATH_SAFE)


def unknown_tokens(pattern: str) -> list[str]:
    """The `:placeholders` of a pattern that no rule fills (for the settings check)."""
    return [token for token in _TOKEN.findall(STYLES.get(pattern, pattern)) if token not in TOKENS]
