"""The one Article model: cleaning, validation and identity.

Everything a feed publishes passes through `article_from_front_matter`, so the
rules live in one place: plain-text titles and excerpts with XML-illegal
characters removed and mojibake repaired, absolute http(s) links only, dates
always timezone-aware, and `secured` never kept.
"""

from __future__ import annotations

import functools
import hashlib
import html
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import ftfy

from feedservice.seeds import FrontMatter, SeedError, split_front_matter

MAX_TITLE_CHARS = 300
MAX_EXCERPT_CHARS = 2000
MAX_TOPICS = 50
MAX_TOPIC_CHARS = 100
MAX_IMAGES = 10
MAX_RELATED = 20
MAX_URL_CHARS = 2048
MAX_SHORT_TEXT = 200
MAX_RAW_TEXT = 65536  # text cleaning (ftfy) is linear but not cheap: cap its input
MAX_TOPIC_ENTRIES = 1000  # list entries read before giving up on finding MAX_TOPICS names

# XML 1.0 forbids C0 controls except tab/newline/CR, surrogates and U+FFFE/U+FFFF;
# C1 controls and other noncharacters are legal but never intended in text.
_XML_ILLEGAL = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]"
)
_TAG = re.compile(r"<(?:[A-Za-z!/?][^<>]*)>?")
_URL_UNSAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"<>\\^`{|}')
_SAFE_SCHEMES = {"http", "https"}
_URL_WHITESPACE = {ord("\t"): None, ord("\n"): None, ord("\r"): None}
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# A URL that clean_url would return unchanged: lower-case http(s), a plain host (no
# userinfo, port, IPv6 or escapes), then only characters quote() keeps, and no `%`.
_CLEAN_URL = re.compile(
    r"(https?)://([A-Za-z0-9.-]+)((?:[/?#][" + re.escape(_URL_UNSAFE.replace("%", "")) + r"]*)?)"
)
_DOMAIN = re.compile(r"[A-Za-z0-9.-]{1,253}")
_WHOLE_NUMBER = re.compile(r"\s*-?\d{1,18}\s*")
_SLUG_SEPARATORS = re.compile(r"[^a-z0-9]+")
# Repair encoding damage only: keep curly quotes, ligatures and full-width forms as written.
# (One config object, built once: ftfy builds one per call from keyword arguments.)
_FTFY_REPAIR_ONLY = ftfy.TextFixerConfig(
    explain=False,
    uncurl_quotes=False,
    fix_latin_ligatures=False,
    fix_character_width=False,
    normalization="NFC",
)


@dataclass(frozen=True, slots=True)
class Image:
    url: str
    width: int | None = None
    height: int | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    domain: str | None = None
    image: Image | None = None

    @property
    def url(self) -> str | None:
        return f"https://{self.domain}/" if self.domain else None


@dataclass(frozen=True, slots=True)
class RelatedArticle:
    title: str
    link: str
    provider: str | None = None
    published: datetime | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    """A finding about one file. `fatal` problems keep the file out of the feeds."""

    source: str
    field: str
    message: str
    line: int | None = None
    fatal: bool = True

    def describe(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return f"{self.source}: {self.field}: {self.message}{where}"

    @classmethod
    def from_error(cls, error: SeedError) -> Problem:
        return cls(error.source, error.field, error.message, error.line, fatal=True)


@dataclass(frozen=True, slots=True)
class Article:
    """A cleaned article, ready for every output format. Never holds `secured`."""

    identity: str  # canonical URL: RSS guid, Atom id, JSON Feed id
    link: str
    title: str
    excerpt: str
    published: datetime  # always timezone-aware
    source: str  # seed path relative to the seed directory
    is_draft: bool = False
    topics: tuple[str, ...] = ()
    category: str | None = None
    kind: str | None = None  # the `type` field
    quality: int | None = None
    heat: int | None = None
    provider: Provider | None = None
    images: tuple[Image, ...] = ()
    related: tuple[RelatedArticle, ...] = ()
    original_url: str | None = None
    amp_url: str | None = None
    cdn_amp_url: str | None = None
    # A digest of the seed's front matter: equal revisions mean equal output, and any
    # edit that can change the output changes it (so can one that cannot, such as a
    # comment: that only costs a render). Never published: it covers `secured` too.
    revision: str = ""
    modified: datetime | None = None  # the seed file's mtime: feeds' Last-Modified, not content

    @property
    def sort_key(self) -> tuple[float, str]:
        """Newest first; ties broken by identity so order never depends on I/O."""
        return (-self.published.timestamp(), self.identity)


@dataclass(frozen=True, slots=True)
class ParsedSeed:
    article: Article
    warnings: tuple[Problem, ...] = ()


def parse_seed(data: bytes, source: str) -> ParsedSeed:
    """Bytes of one seed file → a clean Article, or SeedError. Pure; the fuzz target."""
    front = split_front_matter(data, source)
    return article_from_front_matter(front, source)


def article_from_front_matter(front: FrontMatter, source: str) -> ParsedSeed:
    data = front.data
    warnings: list[Problem] = []

    secret = data.get("secured")

    def fail(key: str, message: str) -> SeedError:
        return SeedError(source, key, _redact(message, secret), front.line_of(key))

    def warn(key: str, message: str) -> None:
        message = _redact(message, secret)
        warnings.append(Problem(source, key, message, front.line_of(key), fatal=False))

    title = _required_text(data, "title", fail, MAX_TITLE_CHARS, warn)
    published = _required_date(data, "publishedDateTime", fail)
    web_url = _optional_url(data, "webUrl", fail, warn)
    original_url = _optional_url(data, "originalUrl", fail, warn)
    link = web_url or original_url
    if link is None:
        raise fail("webUrl", "a link is required: set webUrl or originalUrl to an http(s) URL")
    is_draft = not _published_flag(data.get("published", True), fail)
    article = Article(
        identity=canonical_identity(link),
        link=link,
        title=title,
        excerpt=_optional_text(data, "excerpt", fail, MAX_EXCERPT_CHARS, warn) or "",
        published=published,
        source=source,
        is_draft=is_draft,
        topics=_topics(data.get("topics"), fail, warn),
        category=_optional_text(data, "category", fail, MAX_SHORT_TEXT, warn),
        kind=_optional_text(data, "type", fail, MAX_SHORT_TEXT, warn),
        quality=_optional_int(data, "quality", fail),
        heat=_optional_int(data, "heat", fail),
        provider=_provider(data.get("provider"), fail, warn),
        images=_images(data.get("images"), "images", fail, warn),
        related=_related(data.get("related"), warn),
        original_url=original_url,
        amp_url=_optional_url(data, "ampWebUrl", fail, warn),
        cdn_amp_url=_optional_url(data, "cdnAmpWebUrl", fail, warn),
        revision=front.digest,
    )
    return ParsedSeed(article, tuple(warnings))


def _redact(message: str, secret: Any) -> str:
    """Messages quote bad values; if one holds the `secured` value, it is cut out."""
    if isinstance(secret, bool) or not isinstance(secret, str | int | float):
        return message
    text = str(secret).strip()
    if len(text) < 4:  # too short to be a secret, and too common to cut out
        return message
    return message.replace(text, "[redacted]")


# --- text ----------------------------------------------------------------------------------


def clean_text(value: str) -> str:
    """Repair mojibake, drop XML-illegal characters, normalise to NFC."""
    if value.isascii() and value.isprintable() and "&" not in value:
        return value  # the common case: nothing illegal (no control character) to drop either
    value = _XML_ILLEGAL.sub("", value)
    if value.isascii() and "&" not in value and "\r" not in value:
        return value  # nothing ftfy could change: no encoding, entity or line-break fixes
    value = ftfy.fix_text(value, _FTFY_REPAIR_ONLY)
    return _XML_ILLEGAL.sub("", value)


@functools.lru_cache(maxsize=4096)  # pure; provider names and topics repeat a lot
def plain_text(value: str) -> str:
    """Markup-free text: readers render RSS titles as HTML, so no tag may survive."""
    value = clean_text(value[:MAX_RAW_TEXT])  # every caller truncates far below this
    if "<" not in value and "&" not in value:
        return " ".join(value.split())  # no tag, no entity: the loop below would keep it
    for _ in range(3):  # entity-encoded tags become tags once unescaped; strip again
        stripped = html.unescape(_TAG.sub("", value))
        if stripped == value:
            break
        value = stripped
    value = _TAG.sub("", value)
    return " ".join(value.split())


def _truncate(value: str, limit: int) -> str:
    if len(value) <= limit:
        return value
    return value[: limit - 1].rstrip() + "…"


def _required_text(data: dict[str, Any], key: str, fail: Any, limit: int, warn: Any) -> str:
    value = data.get(key)
    if value is None:
        raise fail(key, "is required")
    text = _optional_text(data, key, fail, limit, warn)
    if not text:
        raise fail(key, "is empty once markup and control characters are removed")
    return text


def _optional_text(data: dict[str, Any], key: str, fail: Any, limit: int, warn: Any) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise fail(key, f"must be text, got {_type_name(value)}")
    text = plain_text(str(value))
    if len(text) > limit:
        warn(key, f"longer than {limit} characters; truncated")
        text = _truncate(text, limit)
    return text or None


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", bool: "true/false"}.get(
        type(value), type(value).__name__
    )


def _optional_int(data: dict[str, Any], key: str, fail: Any) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        raise fail(key, "must be a whole number, got true/false")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value):
        return int(value)
    raise fail(key, f"must be a whole number, got {_type_name(value)}")


def _published_flag(value: Any, fail: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {
        "true",
        "yes",
        "on",
        "false",
        "no",
        "off",
    }:
        return value.strip().lower() in {"true", "yes", "on"}
    raise fail("published", f"must be true or false, got {_type_name(value)}")


# --- dates ---------------------------------------------------------------------------------


def _required_date(data: dict[str, Any], key: str, fail: Any) -> datetime:
    value = data.get(key)
    if value is None:
        raise fail(key, "is required")
    try:
        return parse_date(value)
    except ValueError as error:
        raise fail(key, str(error)) from None


def parse_date(value: Any) -> datetime:
    """A timezone-aware datetime from YAML's date types, ISO 8601, RFC 2822 or epoch seconds.

    A value without an offset means UTC. Anything else is a ValueError that says
    what was expected.
    """
    if isinstance(value, datetime):
        result = value
    elif isinstance(value, date):
        result = datetime(value.year, value.month, value.day)
    elif isinstance(value, bool):
        raise ValueError("must be a date and time, got true/false")
    elif isinstance(value, int | float):
        try:
            result = datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"epoch seconds out of range: {value!r}") from None
    elif isinstance(value, str):
        result = _parse_date_text(value.strip())
    else:
        raise ValueError(f"must be a date and time, got {_type_name(value)}")
    if result.tzinfo is None or result.utcoffset() is None:
        result = result.replace(tzinfo=UTC)
    try:
        result.astimezone(UTC)  # offsets that push year 1 / 9999 out of range
    except OverflowError:
        raise ValueError("date is out of the representable range") from None
    return result


def _parse_date_text(text: str) -> datetime:
    if len(text) > 64:
        raise ValueError("must be an ISO 8601 date and time such as 2021-11-12T05:20:00Z")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text)  # RFC 2822, as in RSS
    except (TypeError, ValueError, IndexError):
        pass
    raise ValueError(
        f"must be an ISO 8601 date and time such as 2021-11-12T05:20:00Z, got {text!r}"
    )


# --- links ---------------------------------------------------------------------------------


def clean_url(value: Any) -> str:
    """An absolute http(s) URL, percent-encoding only characters illegal in URLs.

    Raises ValueError for anything else (relative, javascript:, data:, ...), so a
    hostile link is never published.
    """
    if value.__class__ is str and len(value) <= MAX_URL_CHARS and _CLEAN_URL.fullmatch(value):
        return value  # already clean: what the full check below would give
    return _clean_url_checked(value)


def _clean_url_checked(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a URL, got {_type_name(value)}")
    # Browsers (WHATWG URL) and urlsplit drop tabs and newlines anywhere in a URL: drop
    # them first, so the string checked below is exactly the string published.
    url = _XML_ILLEGAL.sub("", value).translate(_URL_WHITESPACE).strip()
    if len(url) > MAX_URL_CHARS:
        raise ValueError(f"longer than {MAX_URL_CHARS} characters")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if not scheme:
        raise ValueError(f"must be an absolute http(s) URL, got a relative one: {url[:80]!r}")
    if scheme not in _SAFE_SCHEMES:
        raise ValueError(f"{scheme}: links are not allowed; only http and https")
    if not parts.hostname:
        raise ValueError(f"has no host: {url[:80]!r}")
    _ = parts.port  # raises ValueError for a port that is not a number in 0-65535
    url = scheme + url[len(parts.scheme) :]  # `HTTPS://` is valid, but publish `https://`
    return _STRAY_PERCENT.sub("%25", quote(url, safe=_URL_UNSAFE + "%"))  # a lone % is literal


def canonical_identity(link: str) -> str:
    """The article's identity: its link with scheme and host lower-cased, default
    port and fragment dropped. Edits to title or excerpt, renames and restarts
    leave it unchanged; two files with the same link describe one article."""
    clean = _CLEAN_URL.fullmatch(link)
    if clean is not None:  # lower-case scheme, no port, userinfo or escapes: just split it
        scheme, host, rest = clean.groups()
        path, _, query = rest.partition("#")[0].partition("?")
        path = _remove_dot_segments(path) or "/"
        return (
            f"{scheme}://{host.lower()}{path}?{query}"
            if query
            else f"{scheme}://{host.lower()}{path}"
        )
    return _canonical_identity_split(link)


def _canonical_identity_split(link: str) -> str:
    parts = urlsplit(link)
    host = (parts.hostname or "").lower()
    port = parts.port if parts.port not in {None, 80, 443} else None
    netloc = host + (f":{port}" if port else "")
    if parts.username:
        netloc = parts.username + "@" + netloc
    path = _remove_dot_segments(_normalise_escapes(parts.path)) or "/"
    query = _normalise_escapes(parts.query)
    return urlunsplit((parts.scheme.lower(), netloc, path, query, ""))


def _normalise_escapes(text: str) -> str:
    """RFC 3986 §6.2.2.2: upper-case escapes, decode unreserved ones, so one URL has one id."""
    if "%" not in text:
        return text

    def fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    return _ESCAPE.sub(fix, text)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4: `/a/./b/../c` is `/a/c`."""
    if "/." not in path and not path.startswith("."):
        return path  # no `.` or `..` segment
    segments = path.split("/")
    result: list[str] = []
    for position, segment in enumerate(segments):
        last = position == len(segments) - 1
        if segment in {".", ".."}:
            if segment == ".." and len(result) > 1:
                result.pop()
            if last:
                result.append("")
        else:
            result.append(segment)
    return "/".join(result)


def _optional_url(data: dict[str, Any], key: str, fail: Any, warn: Any) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    try:
        return clean_url(value)
    except ValueError as error:
        warn(key, f"{error}; link dropped")
        return None


# --- nested structures ---------------------------------------------------------------------


def _topics(value: Any, fail: Any, warn: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]  # a single topic written without a list
    if not isinstance(value, list):
        raise fail("topics", f"must be a list of topic names, got {_type_name(value)}")
    topics: list[str] = []
    seen: set[str] = set()
    if len(value) > MAX_TOPIC_ENTRIES:
        warn("topics", f"more than {MAX_TOPIC_ENTRIES} entries; the rest are ignored")
    for item in value[:MAX_TOPIC_ENTRIES]:
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            warn("topics", f"ignored a topic that is {_type_name(item)}, not text")
            continue
        name = _truncate(plain_text(str(item)), MAX_TOPIC_CHARS)
        if not name:
            continue
        key = slugify(name)
        if key in seen:
            continue
        if len(topics) == MAX_TOPICS:
            warn("topics", f"more than {MAX_TOPICS} topics; the rest are ignored")
            break
        seen.add(key)
        topics.append(name)
    return tuple(topics)


def _provider(value: Any, fail: Any, warn: Any) -> Provider | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise fail("provider", f"must be a mapping with name and domain, got {_type_name(value)}")
    name = value.get("name")
    if not isinstance(name, str) or not plain_text(name):
        return None
    domain = value.get("domain")
    domain_text = None
    if isinstance(domain, str) and _DOMAIN.fullmatch(domain.strip()):
        domain_text = domain.strip().lower()
    images = _images(value.get("images"), "provider", fail, warn)
    return Provider(
        _truncate(plain_text(name), MAX_SHORT_TEXT), domain_text, images[0] if images else None
    )


def _images(value: Any, key: str, fail: Any, warn: Any) -> tuple[Image, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise fail(key, f"images must be a list, got {_type_name(value)}")
    images: list[Image] = []
    for item in value[:MAX_IMAGES]:
        if not isinstance(item, dict):
            continue
        try:
            url = clean_url(item.get("url"))
        except ValueError as error:
            warn(key, f"image url {error}; image dropped")
            continue
        title = item.get("title")
        images.append(
            Image(
                url=url,
                width=_dimension(item.get("width")),
                height=_dimension(item.get("height")),
                title=_truncate(plain_text(title), MAX_TITLE_CHARS) or None
                if isinstance(title, str)
                else None,
            )
        )
    return tuple(images)


def _dimension(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 100_000:
        return value
    return None


def _related(value: Any, warn: Any) -> tuple[RelatedArticle, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        warn("related", "must be a list of articles; ignored")
        return ()
    related: list[RelatedArticle] = []
    for item in value[:MAX_RELATED]:
        if not isinstance(item, dict):
            continue
        title = item.get("title")
        if not isinstance(title, str) or not plain_text(title):
            continue
        link = None
        for key in ("webUrl", "originalUrl"):
            try:
                link = clean_url(item.get(key))
                break
            except ValueError:
                continue
        if link is None:
            warn(
                "related", f"related article {plain_text(title)[:60]!r} has no usable link; dropped"
            )
            continue
        provider = item.get("provider")
        provider_name = provider.get("name") if isinstance(provider, dict) else None
        try:
            published = parse_date(item.get("publishedDateTime"))
        except ValueError:
            published = None
        related.append(
            RelatedArticle(
                title=_truncate(plain_text(title), MAX_TITLE_CHARS),
                link=link,
                provider=plain_text(provider_name) or None
                if isinstance(provider_name, str)
                else None,
                published=published,
            )
        )
    return tuple(related)


# --- topics --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1 << 16)  # pure; topic names repeat across 100k articles
def slugify(name: str) -> str:
    """`AI in Autos` → `ai-in-autos`: lowercase ASCII, each other run becomes one `-`.

    Accents are folded first (`Künstliche` → `kunstliche`); a name with no ASCII
    letters at all gets a short stable hash so it still has a URL.
    """
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = _SLUG_SEPARATORS.sub("-", folded.lower()).strip("-")[:80].strip("-")
    if slug:
        return slug
    return (
        "topic-" + hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=4).hexdigest()
    )
