"""Untrusted HTML → HTML safe for any reader, every URL in it absolute.

An allow-list (nh3, Rust's ammonia): the tags below, the W3C feed validator accepts
every one; no script, style, frame, object, form, base or meta; no event handler or
`style` attribute; links only to http(s) and mailto, images also from `data:image/`
(raster types only). Every relative URL (links, images, `srcset`, `cite`) is resolved
against the article's link: readers do not resolve relative URLs reliably.
"""

from __future__ import annotations

import functools
import html
import re
from urllib.parse import urljoin

import nh3

from feedservice.ingest.clean import clean_url

TAGS = frozenset(
    re.findall(
        r"\w+",
        """a abbr acronym area article aside b bdi blockquote br caption center cite code col
        colgroup data dd del details dfn div dl dt em figcaption figure footer h1 h2 h3 h4 h5
        h6 header hgroup hr i img ins kbd li map mark nav ol p picture pre q rp rt ruby s samp
        small source span strike strong sub summary sup table tbody td tfoot th thead time tr
        tt u ul var wbr""",
    )
)
GONE_WITH_CONTENT = frozenset(
    re.findall(
        r"\w+",
        """script style template svg math object iframe noscript title textarea select
        applet noembed noframes xmp""",
    )
)
ATTRIBUTES = {
    "*": {"title", "lang", "dir"},
    "a": {"href", "hreflang"},
    "img": {"src", "srcset", "alt", "width", "height", "sizes"},
    "source": {"src", "srcset", "type", "media", "sizes"},
    "area": {"href", "alt", "shape", "coords"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "del": {"cite", "datetime"},
    "ins": {"cite", "datetime"},
    "ol": {"start", "reversed", "type"},
    "li": {"value"},
    "td": {"colspan", "rowspan", "headers"},
    "th": {"colspan", "rowspan", "headers", "scope", "abbr"},
    "col": {"span"},
    "colgroup": {"span"},
    "time": {"datetime"},
    "data": {"value"},
    "details": {"open"},
}
_URLS = frozenset(("href", "src", "cite"))
_DATA_IMAGE = re.compile(r"data:image/(png|gif|jpeg|webp|avif);", re.IGNORECASE)
_FRAME = re.compile(r"<iframe\b[^>]*?\ssrc\s*=\s*[\"']?([^\"'\s>]+)[^>]*>", re.IGNORECASE)


def sanitise(fragment: str, base: str) -> str:
    """`fragment` with only what the allow-list keeps, every URL absolute against `base`.
    An embedded frame (a video, slides) becomes a link to what it showed."""
    fragment = _FRAME.sub(_frame_link, fragment)
    return nh3.clean(
        fragment,
        tags=set(TAGS),
        clean_content_tags=set(GONE_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ATTRIBUTES.items()},
        url_schemes={"http", "https", "mailto", "data"},
        attribute_filter=functools.partial(_url_filter, base),
        strip_comments=True,
        link_rel="noopener noreferrer",
    )


def _frame_link(match: re.Match[str]) -> str:
    url = html.escape(html.unescape(match[1]))
    return f'<p><a href="{url}">{url}</a></p>'


def _url_filter(base: str, tag: str, attribute: str, value: str) -> str | None:
    if attribute in _URLS:
        return absolute(value, base, tag == "img" and attribute == "src")
    if attribute == "srcset":
        candidates = []
        for candidate in value.split(","):
            url, _, size = candidate.strip().partition(" ")
            url = absolute(url, base, False) if url else None
            if url is not None:
                candidates.append(f"{url} {size.strip()}".strip())
        return ", ".join(candidates) or None
    return value


def absolute(value: str, base: str, image: bool) -> str | None:
    """`value` as an absolute http(s) URL, resolved against `base`; a mailto link, or an
    image's `data:image/` URL, as it is; None for anything else (the attribute goes)."""
    value = value.strip()
    lowered = value[:16].lower()
    if not value or (lowered.startswith("data:") and not (image and _DATA_IMAGE.match(value))):
        return None
    if lowered.startswith(("mailto:", "data:")):
        return value  # (the sanitiser has checked the scheme)
    try:
        return clean_url(urljoin(base, value))
    except ValueError:
        return None
