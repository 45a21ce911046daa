"""The HTML body shared by RSS descriptions, Atom content and JSON Feed content_html.

Every value is escaped: readers render this as HTML, and seed text is untrusted.
"""

from __future__ import annotations

from html import escape

from feedservice.ingest.article import Article


def item_html(article: Article) -> str:
    parts = []
    if article.excerpt:
        parts.append(f"<p>{escape(article.excerpt)}</p>")
    if article.related:
        links = []
        for related in article.related:
            source = f" ({escape(related.provider)})" if related.provider else ""
            links.append(
                f'<li><a href="{escape(related.link)}">{escape(related.title)}</a>{source}</li>'
            )
        parts.append("<p>Related:</p><ul>" + "".join(links) + "</ul>")
    if not parts:
        parts.append(f'<p><a href="{escape(article.link)}">{escape(article.title)}</a></p>')
    return "".join(parts)


def image_type(url: str) -> str:
    """A MIME type for an image URL, from its extension; JPEG when it says nothing."""
    path = url.split("?", 1)[0].lower()
    for suffix, mime in (
        (".png", "image/png"),
        (".gif", "image/gif"),
        (".webp", "image/webp"),
        (".svg", "image/svg+xml"),
        (".avif", "image/avif"),
    ):
        if path.endswith(suffix):
            return mime
    return "image/jpeg"
