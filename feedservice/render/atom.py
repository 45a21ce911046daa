"""Atom 1.0 (RFC 4287), built with feedgen; links feedgen drops go through its extension,
and deleted entries (RFC 6721 tombstones) through one of ours."""

from __future__ import annotations

from feedservice.ingest.clean import slugify
from feedservice.render.content import content_html, image_type
from feedservice.render.feedgen_base import (
    TombstonesExtension,
    add_media,
    new_generator,
    self_and_hub_links,
)
from feedservice.render.page import FeedPage


def render(page: FeedPage) -> bytes:
    generator = new_generator(page, "atom")
    generator.id(page.url("atom", 1))  # one id for the logical feed, whatever the page
    generator.subtitle(page.description)
    author = page.brand("author") or page.site.title
    generator.author({"name": author, "uri": page.site.base_url + "/"})
    if page.brand("icon"):
        generator.icon(page.brand("icon"))
    if page.brand("logo"):
        generator.logo(page.brand("logo"))
    if page.tombstones:  # (the namespace only where it is used)
        generator.register_extension("tombstones", TombstonesExtension, atom=True, rss=False)
        generator.tombstones.deleted = page.tombstones
    for link in self_and_hub_links(page, "atom"):
        generator.link(link)
    generator.link(href=page.html_url, rel="alternate", type="text/html")
    for number, article in enumerate(page.items):
        entry = generator.add_entry(order="append")
        entry.id(article.identity)
        entry.title(article.title)
        entry.updated(page.modified[number] if page.modified else article.published)
        entry.published(article.published)
        for person in article.people:
            entry.author({"name": person.name, **({"uri": person.url} if person.url else {})})
        if article.excerpt:
            entry.summary(article.excerpt, type="text")
        entry.content(content_html(article, page.full), type="html")
        for topic in article.topics:
            entry.category(term=slugify(topic), label=topic)
        extra = [{"href": article.link, "rel": "alternate", "type": "text/html"}]
        extra.extend(
            {"href": related.link, "rel": "related", "type": "text/html", "title": related.title}
            for related in article.related
        )
        if article.images:
            url = article.images[0].url
            extra.append({"href": url, "rel": "enclosure", "type": image_type(url)})
        entry.fslinks.links = extra
        add_media(entry, article)
    return generator.atom_str(pretty=True)
