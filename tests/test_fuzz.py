"""Fuzzing the seed-file parser: any bytes give a Parsed article or a Problem, nothing else.

Three sources of input, each bounded by `max_examples`: raw bytes, YAML-shaped
token soup inside front-matter delimiters, and mutations of the real seed files
(the sample seeds and, when present, ../shared/realworld). Crashes of libyaml itself
(deep nesting) are provoked on purpose, in a child process, by test_adversarial.py.
"""

from __future__ import annotations

import pytest
from conftest import REALWORLD, SAMPLE_SEEDS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedservice.ingest.article import Article, Parsed, parse_seed
from feedservice.ingest.frontmatter import split_front_matter
from feedservice.ingest.problem import Problem
from feedservice.ingest.record import from_record_text, record_text

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _real_seeds() -> list[bytes]:
    files = sorted(SAMPLE_SEEDS.glob("*")) + sorted(REALWORLD.glob("*.md"))[:20]
    return [path.read_bytes() for path in files if path.is_file()]


REAL = _real_seeds()
TOKENS = [
    "---",
    "\n",
    "\r\n",
    "  ",
    "\t",
    "- ",
    "? ",
    ": ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "<<: ",
    "!!python/object/apply:os.system ",
    "!!binary ",
    "!!int ",
    "!!float ",
    "!!timestamp ",
    "!!str ",
    "!!set ",
    "!!omap ",
    "!foo ",
    "%YAML 1.1\n",
    "%TAG ! tag:x,1:\n",
    "...",
    "|",
    ">",
    "|-",
    "'",
    '"',
    "\\x00",
    "\\u2028",
    "#",
    "~",
    "null",
    "yes",
    "no",
    ".inf",
    ".nan",
    "0x1F",
    "0o17",
    "1_000",
    "1:20:30",
    "2021-13-45",
    "2021-11-12T05:20:00Z",
    "2021-11-12 05:20:00 +05:30",
    "9999-12-31T23:59:59-14:00",
    "1e400",
    "9" * 60,
    "title",
    "excerpt",
    "publishedDateTime",
    "webUrl",
    "originalUrl",
    "ampWebUrl",
    "topics",
    "published",
    "provider",
    "name",
    "domain",
    "images",
    "url",
    "width",
    "related",
    "quality",
    "heat",
    "type",
    "category",
    "secured",
    "https://x.example/a",
    "javascript:alert(1)",
    "data:,x",
    "//x",
    "http://[::1",
    "http://x:99999/",
    "<script>",
    "&amp;",
    "é",
    "\u202e",
    "👋",
    "\ufeff",
    "\x85",
    "\x00",
    "\x1b",
    "\udcff",
]
token_soup = st.lists(st.sampled_from(TOKENS), max_size=80).map("".join)
mutation = st.tuples(
    st.sampled_from(["flip", "insert", "delete", "duplicate", "truncate", "token"]),
    st.integers(0, 1 << 16),
    st.integers(1, 64),
    st.binary(min_size=1, max_size=8),
    st.sampled_from(TOKENS),
)


def mutate(data: bytes, operations: list[tuple[str, int, int, bytes, str]]) -> bytes:
    for kind, position, length, blob, token in operations:
        at = position % (len(data) + 1)
        if kind == "flip" and data:
            at %= len(data)
            data = data[:at] + bytes([data[at] ^ (1 << (length % 8))]) + data[at + 1 :]
        elif kind == "insert":
            data = data[:at] + blob + data[at:]
        elif kind == "delete":
            data = data[:at] + data[at + length :]
        elif kind == "duplicate":
            data = data[:at] + data[at : at + length] * (length % 5 + 2) + data[at:]
        elif kind == "truncate":
            data = data[:at]
        else:
            data = data[:at] + token.encode("utf-8", "surrogatepass") + data[at:]
    return data


def check(data: bytes) -> None:
    """The property: a clean Article (that the store can keep and read back), or the
    project's own error naming the file; no message quotes the secret."""
    secret = _secret_of(data)
    try:
        result = parse_seed(data, "fuzz.md")
    except Problem as error:
        assert error.source == "fuzz.md"
        assert error.field
        assert error.fatal
        assert secret not in str(error)
        return
    assert isinstance(result, Parsed)
    article = result.article
    assert isinstance(article, Article)
    assert article.title and article.link.startswith(("http://", "https://"))
    assert article.published.tzinfo is not None
    for text in (article.title, article.excerpt, *article.topics):
        text.encode("utf-8")  # no lone surrogates can reach a feed
    for warning in result.warnings:
        assert warning.source == "fuzz.md" and warning.field and not warning.fatal
        assert secret not in str(warning)
    record = record_text(article)  # as the store keeps it
    record.encode("utf-8")  # storable text: no lone surrogates
    assert secret not in record
    assert from_record_text(record, "fuzz.md") == article


def _secret_of(data: bytes) -> str:
    """The file's `secured` value if it has a usable one, else a string never found."""
    try:
        secret = split_front_matter(data, "fuzz.md").data.get("secured")
    except Problem:
        secret = None
    text = str(secret).strip() if isinstance(secret, str | int | float) else ""
    return text if len(text) >= 4 and not isinstance(secret, bool) else "\x00never\x00"


@FUZZ
@given(st.binary(max_size=4096))
def test_raw_bytes(data: bytes) -> None:
    check(data)


@FUZZ
@given(st.binary(max_size=2048))
def test_bytes_inside_front_matter(body: bytes) -> None:
    check(b"---\n" + body + b"\n---\n")


@FUZZ
@given(token_soup)
def test_yaml_token_soup(soup: str) -> None:
    check(("---\n" + soup + "\n---\n").encode("utf-8", "surrogatepass"))
    check(
        (
            "---\ntitle: t\nwebUrl: https://x.example/\npublishedDateTime: 2021-01-01\n"
            + soup
            + "\n---\n"
        ).encode("utf-8", "surrogatepass")
    )


@pytest.mark.skipif(not REAL, reason="no real seed files to mutate")
@FUZZ
@given(st.sampled_from(REAL or [b""]), st.lists(mutation, min_size=1, max_size=6))
def test_mutated_real_seeds(
    seed: bytes, operations: list[tuple[str, int, int, bytes, str]]
) -> None:
    check(mutate(seed, operations))


def test_real_seeds_parse_cleanly() -> None:
    """The unmutated inputs are valid, so mutations start from the accepted path."""
    assert REAL
    for data in REAL:
        assert isinstance(parse_seed(data, "real.md"), Parsed)
