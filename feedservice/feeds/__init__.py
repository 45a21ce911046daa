"""Feed formats: one module each. `render(page, fmt)` is the single entry point."""

from __future__ import annotations

from collections.abc import Callable

from feedservice.feeds import atom, jsonfeed, rss
from feedservice.feeds.page import FeedPage

CONTENT_TYPES = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
}
FORMATS = tuple(CONTENT_TYPES)
_RENDERERS: dict[str, Callable[[FeedPage], bytes]] = {
    "rss": rss.render,
    "atom": atom.render,
    "json": jsonfeed.render,
}


def render(page: FeedPage, fmt: str) -> bytes:
    """The bytes of one feed page in one format; deterministic for the same input."""
    return _RENDERERS[fmt](page)


__all__ = ["CONTENT_TYPES", "FORMATS", "FeedPage", "render"]
