"""RSS 2.0, built with feedgen, with the RSS Profile's escaping of plain text."""

from __future__ import annotations

import math
import re

from feedservice.render.content import image_type, item_html
from feedservice.render.feedgen_base import add_media, new_generator, self_and_hub_links
from feedservice.render.page import FeedPage


def render(page: FeedPage) -> bytes:
    generator = new_generator(page, "rss")
    links = self_and_hub_links(page, "rss")
    generator.link(links[0])  # feedgen writes only this `self` link as atom:link
    generator.fslinks.links = links[1:]
    generator.link(href=page.html_url, rel="alternate")  # the last link() is the channel <link>
    generator.ttl(math.ceil(page.site.reload_interval / 60))  # RSS ttl is in minutes
    image = page.brand("logo") or page.brand("icon")
    if image:  # (its title and link are the channel's, as the validator wants)
        generator.image(image, page.title, page.html_url)
    for article in page.items:
        entry = generator.add_entry(order="append")
        entry.title(article.title)
        entry.link(href=article.link)
        entry.guid(article.identity, permalink=article.identity == article.link)
        entry.pubDate(article.published)
        entry.description(item_html(article))
        if page.full and article.content_html:
            entry.content(article.content_html)  # content:encoded, escaped (not CDATA)
        for person in article.people:
            entry.dc.dc_creator(person.name)
        for topic in article.topics:
            entry.category(term=topic)
        if article.images:
            image = article.images[0]
            entry.enclosure(image.url, 0, image_type(image.url))
        add_media(entry, article)
    return profile_escapes(generator.rss_str(pretty=True))


_HEAD_TEXT = re.compile(rb"<(title|description|category)>([^<]*)</\1>")
_ITEM_TEXT = re.compile(rb"<(title|category|dc:creator)>([^<]*)</\1>")


def profile_escapes(xml: bytes) -> bytes:
    """Write `&` and `<` in plain-text elements as `&#x26;` and `&#x3C;`.

    The RSS Profile asks for this so that readers which decode RSS titles as HTML
    cannot mistake `AT&T` or `<b>` in text for markup; the W3C validator warns
    otherwise. Item descriptions are HTML and stay as they are. The XML is the
    same either way: a character reference and `&amp;` mean the same character.
    """
    first_item = xml.find(b"<item>")
    head, items = (xml, b"") if first_item < 0 else (xml[:first_item], xml[first_item:])
    return _HEAD_TEXT.sub(_escape, head) + _ITEM_TEXT.sub(_escape, items)


def _escape(match: re.Match[bytes]) -> bytes:
    tag, text = match.group(1), match.group(2)
    if b"&" not in text:
        return match.group(0)
    text = text.replace(b"&amp;", b"&#x26;").replace(b"&lt;", b"&#x3C;")
    return b"<" + tag + b">" + text + b"</" + tag + b">"
