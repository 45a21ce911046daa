"""Pure cleaning rules for untrusted seed values: text, links, dates and topic slugs.

Every value a feed publishes passes through here: plain text with XML-illegal
characters removed and mojibake repaired, absolute http(s) links only (never
`javascript:` or `data:`), dates always timezone-aware.
"""

from __future__ import annotations

import functools
import hashlib
import html
import re
import unicodedata
from datetime import UTC, date, datetime, tzinfo
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import ftfy

MAX_URL_CHARS = 2048
MAX_RAW_TEXT = 65536  # ftfy is linear but not cheap: cap its input
# XML 1.0 forbids C0 controls except tab/newline/CR, surrogates and U+FFFE/U+FFFF;
# C1 controls and other noncharacters are legal but never intended in text.
XML_ILLEGAL = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]"
)
_TAG = re.compile(r"<(?:[A-Za-z!/?][^<>]*)>?")
_URL_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"<>\\^`{|}')
_URL_WHITESPACE = {ord("\t"): None, ord("\n"): None, ord("\r"): None}
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_SLUG_SEPARATORS = re.compile(r"[^a-z0-9]+")
# A URL clean_url returns unchanged: lower-case http(s), a plain host (no userinfo, port,
# IPv6 or escapes), then only characters quote() keeps, and no `%`.
_CLEAN_URL = re.compile(
    r"(https?)://([A-Za-z0-9.-]+)((?:[/?#][" + re.escape(_URL_SAFE.replace("%", "")) + r"]*)?)"
)
# Repair encoding damage only: keep curly quotes, ligatures and full-width forms as written.
_FTFY_REPAIR_ONLY = ftfy.TextFixerConfig(
    explain=False,
    uncurl_quotes=False,
    fix_latin_ligatures=False,
    fix_character_width=False,
    normalization="NFC",
)


def type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", bool: "true/false"}.get(
        type(value), type(value).__name__
    )


# --- text ------------------------------------------------------------------------------


def clean_text(value: str) -> str:
    """Repair mojibake (`Googleâ€™s`), drop XML-illegal characters, normalise to NFC."""
    if value.isascii() and value.isprintable() and "&" not in value:
        return value  # the common case: nothing to repair or drop
    value = XML_ILLEGAL.sub("", value)
    if value.isascii() and "&" not in value and "\r" not in value:
        return value  # nothing ftfy could change
    value = ftfy.fix_text(value, _FTFY_REPAIR_ONLY)
    return XML_ILLEGAL.sub("", value)


@functools.lru_cache(maxsize=4096)  # pure; provider names and topics repeat a lot
def plain_text(value: str) -> str:
    """Markup-free text with whitespace collapsed: readers render RSS titles as HTML."""
    value = clean_text(value[:MAX_RAW_TEXT])
    if "<" in value or "&" in value:
        for _ in range(3):  # entity-encoded tags become tags once unescaped; strip again
            stripped = html.unescape(_TAG.sub("", value))
            if stripped == value:
                break
            value = stripped
        value = _TAG.sub("", value)
    return " ".join(value.split())


def truncate(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


# --- links -----------------------------------------------------------------------------


def clean_url(value: Any) -> str:
    """An absolute http(s) URL, percent-encoding only characters illegal in URLs.

    Raises ValueError for anything else (relative, `javascript:`, `data:`, ...)."""
    if value.__class__ is str and len(value) <= MAX_URL_CHARS and _CLEAN_URL.fullmatch(value):
        return value  # already clean: what the checks below would return (most links)
    if not isinstance(value, str):
        raise ValueError(f"must be a URL, got {type_name(value)}")
    # Browsers (WHATWG URL) drop tabs and newlines anywhere in a URL: drop them first,
    # so the string checked is exactly the string published.
    url = XML_ILLEGAL.sub("", value).translate(_URL_WHITESPACE).strip()
    if len(url) > MAX_URL_CHARS:
        raise ValueError(f"longer than {MAX_URL_CHARS} characters")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if not scheme:
        raise ValueError(f"must be an absolute http(s) URL, got a relative one: {url[:80]!r}")
    if scheme not in {"http", "https"}:
        raise ValueError(f"{scheme}: links are not allowed; only http and https")
    if not parts.hostname:
        raise ValueError(f"has no host: {url[:80]!r}")
    _ = parts.port  # raises ValueError for a port that is not a number in 0-65535
    url = scheme + url[len(parts.scheme) :]  # `HTTPS://` is valid, but publish `https://`
    if not parts.hostname.isascii() or "%" in parts.hostname:
        url = _with_ascii_host(url)
    return _STRAY_PERCENT.sub("%25", quote(url, safe=_URL_SAFE + "%"))  # a lone % is literal


def _with_ascii_host(url: str) -> str:
    """The URL with its host in IDNA form (`bücher.example`, or `b%C3%BCcher.example`, is
    `xn--bcher-kva.example`): RFC 3986 §3.2.2 wants a registered name in ASCII, readers
    differ on anything else, and both spellings must give one identity."""
    parts = urlsplit(url)
    name = unquote(parts.hostname or "")
    try:
        host = name.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"has a host that is not a domain name: {name[:80]!r}") from None
    netloc = host + (f":{parts.port}" if parts.port is not None else "")
    if parts.username is not None:
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def canonical_identity(link: str) -> str:
    """The article's identity (RSS guid, Atom id, JSON Feed id): its link in RFC 3986
    normal form, without default port or fragment. Title edits, renames and restarts
    leave it unchanged; two files with the same link describe one article."""
    plain = _CLEAN_URL.fullmatch(link)
    if plain is not None:  # no port, userinfo or escapes (most links): only split it
        scheme, host, rest = plain.groups()
        path, _, query = rest.partition("#")[0].partition("?")
        path = _remove_dot_segments(path) or "/"
        return f"{scheme}://{host.lower()}{path}" + (f"?{query}" if query else "")
    return canonical_identity_by_parts(link)


def canonical_identity_by_parts(link: str) -> str:
    """`canonical_identity` for any link, through urlsplit (the fast form's reference)."""
    parts = urlsplit(link)
    host = (parts.hostname or "").lower()
    port = parts.port if parts.port not in {None, 80, 443} else None
    netloc = host + (f":{port}" if port else "")
    if parts.username:
        netloc = parts.username + "@" + netloc
    path = _remove_dot_segments(_normalise_escapes(parts.path)) or "/"
    return urlunsplit((parts.scheme.lower(), netloc, path, _normalise_escapes(parts.query), ""))


def _normalise_escapes(text: str) -> str:
    """RFC 3986 §6.2.2.2: upper-case escapes, decode unreserved ones."""
    if "%" not in text:
        return text

    def fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    return _ESCAPE.sub(fix, text)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4: `/a/./b/../c` is `/a/c`."""
    if "/." not in path and not path.startswith("."):
        return path
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


# --- dates -----------------------------------------------------------------------------


def parse_date(value: Any, zone: tzinfo = UTC) -> datetime:
    """A timezone-aware datetime from YAML's date types, ISO 8601, RFC 2822 or epoch
    seconds. A value without an offset is in `zone`. Anything else is a ValueError that
    says what was expected."""
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
        raise ValueError(f"must be a date and time, got {type_name(value)}")
    if result.tzinfo is None or result.utcoffset() is None:
        try:
            result = result.replace(tzinfo=zone, fold=0)
            result.utcoffset()
        except (OverflowError, ValueError):
            raise ValueError("date is out of the representable range") from None
    try:
        result.astimezone(UTC)  # offsets that push year 1 or 9999 out of range
    except OverflowError:
        raise ValueError("date is out of the representable range") from None
    return result


def _parse_date_text(text: str) -> datetime:
    if len(text) <= 64:
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
        try:
            return parsedate_to_datetime(text)  # RFC 2822, as in RSS
        except (TypeError, ValueError, IndexError):
            pass
    raise ValueError(
        f"must be an ISO 8601 date and time such as 2021-11-12T05:20:00Z, got {text[:80]!r}"
    )


def utc_micros(value: datetime) -> int:
    """A datetime as integer microseconds since the Unix epoch (exact, sortable)."""
    delta = value.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


# --- topics ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=1 << 16)  # pure; topic names repeat across 100k articles
def slugify(name: str) -> str:
    """`AI in Autos` → `ai-in-autos`: lowercase ASCII, each other run becomes one `-`.

    Accents are folded first (`Künstliche` → `kunstliche`); a name with no ASCII letters
    at all gets a short stable hash so it still has a URL."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = _SLUG_SEPARATORS.sub("-", folded.lower()).strip("-")[:80].strip("-")
    if slug:
        return slug
    digest = hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=4).hexdigest()
    return "topic-" + digest


# --- provider domains --------------------------------------------------------------------

_HOST = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?")


@functools.lru_cache(maxsize=4096)  # pure; a few hundred providers over 100k articles
def domain_name(text: str) -> str | None:
    """A provider's domain in its one spelling (lower case, IDNA, no trailing dot), so
    `Example.COM.` and `bücher.example` name one provider feed each; None if not a domain."""
    name = text.strip().rstrip(".")
    try:
        name = name.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    if _HOST.fullmatch(name) is None or ".." in name:
        return None
    return name
