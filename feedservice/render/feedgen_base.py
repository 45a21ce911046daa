"""The feedgen setup RSS and Atom share, plus the extension that fills feedgen's gaps.

feedgen 1.0.0 drops `rel`/`type`/`length` from Atom entry links and emits only
the `self` atom:link in RSS, so paging, hub, related and enclosure links are
added by `LinksExtension` on the lxml tree feedgen builds, and RFC 6721 deleted entries
by `TombstonesExtension`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from feedgen.util import xml_elem

from feedservice.ingest.article import Article
from feedservice.render.page import GENERATOR, GENERATOR_URI, FeedPage

ATOM_NS = "http://www.w3.org/2005/Atom"
TOMBSTONES_NS = "http://purl.org/atompub/tombstones/1.0"


class TombstonesExtension(BaseExtension):
    """`<at:deleted-entry ref="..." when="..."/>` for each article deleted from the feed."""

    def __init__(self) -> None:
        self.deleted: tuple[tuple[str, datetime], ...] = ()

    def extend_ns(self) -> dict[str, str]:
        return {"at": TOMBSTONES_NS}

    def extend_atom(self, feed):  # type: ignore[no-untyped-def]
        for ref, when in self.deleted:
            xml_elem(f"{{{TOMBSTONES_NS}}}deleted-entry", feed, ref=ref, when=_date(when))
        return feed


def _date(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


class LinksExtension(BaseExtension):
    """Feed-level links feedgen cannot write into RSS (paging and hub)."""

    def __init__(self) -> None:
        self.links: list[dict[str, str]] = []

    def extend_rss(self, feed):  # type: ignore[no-untyped-def]
        channel = feed[0]
        for link in self.links:
            xml_elem(f"{{{ATOM_NS}}}link", channel, **link)
        return feed


class EntryLinksExtension(BaseEntryExtension):
    """Entry-level Atom links with their `rel`, `type` and `length` intact."""

    def __init__(self) -> None:
        self.links: list[dict[str, str]] = []

    def extend_atom(self, entry):  # type: ignore[no-untyped-def]
        for link in self.links:
            xml_elem("link", entry, **link)  # feedgen's Atom tree uses an unprefixed xmlns
        return entry


def new_generator(page: FeedPage, fmt: str) -> FeedGenerator:
    """A FeedGenerator with the feed-level fields both formats carry."""
    generator = FeedGenerator()
    generator.register_extension(
        "fslinks", LinksExtension, EntryLinksExtension, atom=True, rss=True
    )
    generator.load_extension("media", atom=True, rss=True)
    generator.load_extension("dc", atom=False, rss=True)
    generator.title(page.title)
    generator.description(page.description)
    generator.language(page.brand("language"))
    generator.generator(GENERATOR, page.generator_version, GENERATOR_URI)
    updated = page.updated.astimezone(UTC)
    generator.updated(updated)
    generator.lastBuildDate(updated)
    return generator


def self_and_hub_links(page: FeedPage, fmt: str) -> list[dict[str, str]]:
    """`self`, `hub` (WebSub) and RFC 5005 paging links, in a fixed order."""
    links = [{"href": page.url(fmt), "rel": "self", "type": _TYPES[fmt]}]
    if page.websub:
        links.append({"href": page.site.websub_hub, "rel": "hub"})
    for rel, href in page.paging(fmt).items():
        links.append({"href": href, "rel": rel, "type": _TYPES[fmt]})
    return links


def add_media(entry, article: Article) -> None:  # type: ignore[no-untyped-def]
    """The first image as media:content and media:thumbnail, with its size."""
    if not article.images:
        return
    image = article.images[0]
    attributes = {"url": image.url}
    if image.width:
        attributes["width"] = str(image.width)
    if image.height:
        attributes["height"] = str(image.height)
    entry.media.content({**attributes, "medium": "image"}, group=None)
    entry.media.thumbnail(attributes, group=None)


_TYPES = {"rss": "application/rss+xml", "atom": "application/atom+xml"}
