"""OPML 2.0 subscription lists: every feed, or every topic feed, in Atom or RSS."""

from __future__ import annotations

from datetime import datetime
from email.utils import format_datetime
from typing import Any

from lxml import etree

from feedservice.http import urls
from feedservice.render.page import feed_title


def render_opml(
    site: Any, feeds: list[dict[str, Any]], which: str, fmt: str, newest: datetime
) -> bytes:
    """`which` is "feeds" (every feed: configured, topic and provider feeds), "topics"
    (topic feeds only) or "providers" (one feed per provider domain)."""
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    title = {"topics": "Topic feeds", "providers": "Provider feeds"}.get(which, "All feeds")
    etree.SubElement(head, "title").text = f"{site.title}: {title}"
    etree.SubElement(head, "dateModified").text = format_datetime(newest)
    if site.author:
        etree.SubElement(head, "ownerName").text = site.author
    etree.SubElement(head, "docs").text = "http://opml.org/spec2.opml"
    body = etree.SubElement(root, "body")
    groups = {
        "feeds": [("Feeds", "feeds"), ("Topics", "topics"), ("Providers", "providers")],
        "providers": [("Providers", "providers")],
    }.get(which, [("Topics", "topics")])
    for label, kind in groups:
        folder = etree.SubElement(body, "outline", text=label, title=label)
        for feed in feeds:
            if feed["kind"] != kind:
                continue
            name = feed_title(feed, site)
            etree.SubElement(
                folder,
                "outline",
                type="rss",
                text=name,
                title=name,
                description=feed["description"],
                xmlUrl=site.base_url + urls.feed_path(kind, feed["name"], fmt),
                htmlUrl=site.base_url + urls.page_path(kind, feed["name"]),
            )
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
