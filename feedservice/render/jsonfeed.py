"""JSON Feed 1.1 (https://jsonfeed.org/version/1.1), serialised deterministically."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from feedservice.render.content import content_html, image_type
from feedservice.render.page import FeedPage

VERSION = "https://jsonfeed.org/version/1.1"


def _date(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def render(page: FeedPage) -> bytes:
    config = page.site
    document: dict[str, Any] = {
        "version": VERSION,
        "title": page.title,
        "home_page_url": page.html_url,
        "feed_url": page.url("json"),
        "description": page.description,
        "language": page.brand("language"),
        "authors": [{"name": page.brand("author") or config.title, "url": config.base_url + "/"}],
    }
    if page.brand("icon"):
        document["icon"] = document["favicon"] = page.brand("icon")
    next_url = page.paging("json").get("next")
    if next_url:
        document["next_url"] = next_url
    if page.websub:
        document["hubs"] = [{"type": "WebSub", "url": config.websub_hub}]
    modified = page.modified or tuple(article.published for article in page.items)
    document["items"] = [
        _item(article, when, page.full) for article, when in zip(page.items, modified, strict=True)
    ]
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))  # (C encoder)
    return text.encode("utf-8", "surrogatepass") + b"\n"


def _item(article: Any, modified: datetime, full: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": article.identity,
        "url": article.link,
        "title": article.title,
        "content_html": content_html(article, full),
    }
    if article.excerpt:
        item["summary"] = article.excerpt
    if article.original_url and article.original_url != article.link:
        item["external_url"] = article.original_url
    if article.images:
        item["image"] = article.images[0].url
        item["attachments"] = [
            {"url": article.images[0].url, "mime_type": image_type(article.images[0].url)}
        ]
    item["date_published"] = _date(article.published)
    item["date_modified"] = _date(modified)
    if article.people:
        item["authors"] = [
            {"name": person.name, **({"url": person.url} if person.url else {})}
            for person in article.people
        ]
    if article.topics:
        item["tags"] = list(article.topics)
    return item
