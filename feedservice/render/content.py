"""The HTML bodies of items: the summary (RSS description) and the content (Atom
content, JSON Feed content_html, RSS content:encoded).

Every value is escaped: readers render this as HTML, and seed text is untrusted. A
page's full content was sanitised when its file was parsed (ingest/sanitize.py).
"""

from __future__ import annotations

from html import escape

from feedservice.ingest.article import Article


def content_html(article: Article, full: bool) -> str:
    """The item's content: its full content when the feed carries it and it has one."""
    if full and article.content_html:
        return article.content_html + _related(article)
    return item_html(article)


def item_html(article: Article) -> str:
    """The summary: the excerpt and related links, or else a link to the article."""
    parts = []
    if article.excerpt:
        parts.append(f"<p>{escape(article.excerpt)}</p>")
    parts.append(_related(article))
    if not any(parts):
        parts.append(f'<p><a href="{escape(article.link)}">{escape(article.title)}</a></p>')
    return "".join(parts)


def _related(article: Article) -> str:
    if not article.related:
        return ""
    links = []
    for related in article.related:
        source = f" ({escape(related.provider)})" if related.provider else ""
        links.append(
            f'<li><a href="{escape(related.link)}">{escape(related.title)}</a>{source}</li>'
        )
    return "<p>Related:</p><ul>" + "".join(links) + "</ul>"


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
