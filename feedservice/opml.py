"""OPML 2.0 subscription lists: every feed, or every topic feed, in Atom or RSS."""

from __future__ import annotations

from datetime import UTC
from email.utils import format_datetime

from lxml import etree

from feedservice.catalog import CONFIGURED_KIND, TOPIC_KIND, Catalog
from feedservice.feeds.page import EPOCH, FeedPage


def render_opml(catalog: Catalog, which: str, fmt: str) -> bytes:
    """`which` is "feeds" (configured and topic feeds) or "topics" (topic feeds only)."""
    config = catalog.config
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    title = "Topic feeds" if which == "topics" else "All feeds"
    etree.SubElement(head, "title").text = f"{config.title}: {title}"
    newest = catalog.articles[0].published if catalog.articles else EPOCH
    etree.SubElement(head, "dateModified").text = format_datetime(newest.astimezone(UTC))
    etree.SubElement(head, "docs").text = "http://opml.org/spec2.opml"
    body = etree.SubElement(root, "body")
    groups = [("Topics", TOPIC_KIND)]
    if which == "feeds":
        groups.insert(0, ("Feeds", CONFIGURED_KIND))
    for label, kind in groups:
        folder = etree.SubElement(body, "outline", text=label, title=label)
        for feed in catalog.feeds_of(kind):
            page = FeedPage(feed, 1, config)
            etree.SubElement(
                folder,
                "outline",
                type="rss",
                text=page.title,
                title=page.title,
                description=feed.description,
                xmlUrl=page.url(fmt),
                htmlUrl=page.html_url,
            )
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
