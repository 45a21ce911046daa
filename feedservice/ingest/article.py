"""A seed file's bytes → one Article (model.py), whatever kind of file it is.

Each file is read by its own fields: an everyday-cc file (`publishedDateTime`,
`webUrl`) is mapped here, as it always was, and never pays for anything else; a
Jekyll or Hugo page is mapped by sitepage.py, which holds the table of their fields.
`secured` is never read into the Article, and its values are cut out of every message.
"""

from __future__ import annotations

import time
from typing import Any

from feedservice.ingest import fields as f
from feedservice.ingest.clean import canonical_identity
from feedservice.ingest.fields import Findings
from feedservice.ingest.frontmatter import FrontMatter, split_front_matter
from feedservice.ingest.model import Article, Author, Image, Parsed, Provider, RelatedArticle
from feedservice.ingest.permalink import Site
from feedservice.ingest.problem import Problem, secret_leaves
from feedservice.ingest.sitepage import kind_of, site_article

__all__ = ["Article", "Author", "Image", "Parsed", "Provider", "RelatedArticle", "Site"]
DEFAULT_SITE = Site()


def parse_seed(data: bytes, source: str, site: Site = DEFAULT_SITE) -> Parsed:
    """Bytes of one seed file → a clean Article; raises the first Problem that keeps it out."""
    article, problems = read_article(data, source, site)
    if article is None:
        raise next(problem for problem in problems if problem.fatal)
    return Parsed(article, problems)


def read_article(
    data: bytes, source: str, site: Site = DEFAULT_SITE, now: float | None = None
) -> tuple[Article | None, tuple[Problem, ...]]:
    """Every problem of one seed file, not only the first, and its Article when none of
    them keeps it out. Never raises for bad content. `source` is the file's path under
    the seed directory (a static-site page's link and kind may depend on it)."""
    try:
        front = split_front_matter(data, source)
    except Problem as problem:
        return None, (problem,)
    findings = Findings(front, source, secret_leaves(front.data.get("secured")))
    data = front.data
    if "publishedDateTime" in data or "webUrl" in data or "originalUrl" in data:
        article = everyday_article(front, source, findings)
    else:
        kind = kind_of(front, source)
        if kind is None:  # nothing says static site: the everyday-cc rules say what is missing
            article = everyday_article(front, source, findings)
        else:
            moment = time.time() if now is None else now
            article = site_article(front, source, kind, site, moment, findings)
    return (None if findings.fatal else article), tuple(findings.problems)


def everyday_article(front: FrontMatter, source: str, found: Findings) -> Article | None:
    """The everyday-cc format: every field as the README's table lists it. The body is
    not read."""
    data, fail, warn, field = front.data, found.fail, found.warn, found.field
    title = field(lambda: f.required_text(data, "title", fail, f.MAX_TITLE_CHARS, warn))
    published = field(lambda: f.required_date(data, "publishedDateTime", fail))
    web_url = f.optional_url(data, "webUrl", warn)
    original_url = f.optional_url(data, "originalUrl", warn)
    link = web_url or original_url
    if link is None:
        found.problems.append(
            fail("webUrl", "a link is required: set webUrl or originalUrl to an http(s) URL")
        )
    values: dict[str, Any] = {
        "excerpt": field(lambda: f.optional_text(data, "excerpt", fail, f.MAX_EXCERPT_CHARS, warn)),
        "is_draft": not field(lambda: f.published_flag(data.get("published", True), fail), True),
        "topics": field(lambda: f.topics(data.get("topics"), fail, warn), ()),
        "category": field(lambda: f.optional_text(data, "category", fail, f.MAX_SHORT_TEXT, warn)),
        "kind": field(lambda: f.optional_text(data, "type", fail, f.MAX_SHORT_TEXT, warn)),
        "quality": field(lambda: f.optional_int(data, "quality", fail)),
        "heat": field(lambda: f.optional_int(data, "heat", fail)),
        "provider": field(lambda: f.provider(data.get("provider"), fail, warn)),
        "images": field(lambda: f.images(data.get("images"), "images", fail, warn), ()),
        "related": f.related(data.get("related"), warn),
        "original_url": original_url,
        "amp_url": f.optional_url(data, "ampWebUrl", warn),
        "cdn_amp_url": f.optional_url(data, "cdnAmpWebUrl", warn),
        "expires": field(lambda: f.optional_date(data, "expiryDate", fail)),
    }
    if found.fatal:
        return None
    return Article(
        identity=canonical_identity(link),  # type: ignore[arg-type]
        link=link,  # type: ignore[arg-type]
        title=title,
        published=published,
        source=source,
        excerpt=values.pop("excerpt") or "",
        **values,
    )
