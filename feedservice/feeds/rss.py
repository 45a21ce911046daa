"""RSS 2.0, built with feedgen."""

from __future__ import annotations

import math

from feedservice.feeds.content import image_type, item_html
from feedservice.feeds.feedgen_base import add_media, new_generator, self_and_hub_links
from feedservice.feeds.page import FeedPage


def render(page: FeedPage) -> bytes:
    generator = new_generator(page, "rss")
    links = self_and_hub_links(page, "rss")
    generator.link(links[0])  # feedgen writes only this `self` link as atom:link
    generator.fslinks.links = links[1:]
    generator.link(href=page.html_url, rel="alternate")  # the last link() is the channel <link>
    generator.ttl(math.ceil(page.config.reload_interval / 60))  # RSS ttl is in minutes
    for article in page.items:
        entry = generator.add_entry(order="append")
        entry.title(article.title)
        entry.link(href=article.link)
        entry.guid(article.identity, permalink=article.identity == article.link)
        entry.pubDate(article.published)
        entry.description(item_html(article))
        if article.provider:
            entry.dc.dc_creator(article.provider.name)
        for topic in article.topics:
            entry.category(term=topic)
        if article.images:
            image = article.images[0]
            entry.enclosure(image.url, 0, image_type(image.url))
        add_media(entry, article)
    return generator.rss_str(pretty=True)
