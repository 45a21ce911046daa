"""The adversarial seed corpus: hostile files an operator might drop into the seed directory.

`write_corpus(root)` writes every case of issue 5 next to a set of good articles and
returns the cases, each with the outcome the service must produce:

- `rejected`: the file is skipped with an error that names the file and `field`,
  and whose message contains `message`;
- `accepted`: the article is served, cleaned to exactly `values` (Article attributes),
  with a warning for every field in `warnings` (`(encoding)` for a repaired line);
- `draft`: valid but unpublished: no error, never served;
- `ignored`: not a seed file at all (directory, FIFO, dangling symlink): no article,
  no error.

Every file whose front matter parses carries a `secured` value `SECRET_MARK-...`, so
tests can prove that neither the value nor the word `secured` ever leaves the service.
Cases that need timing (a file that vanishes, turns unreadable or is caught half
written) are driven by tests/test_adversarial.py with the helpers at the bottom.
"""

from __future__ import annotations

import dataclasses
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

FORGED = "FORGED-LOG-LINE"  # starts a line of its own only if a file name can break lines
SECRET_MARK = "SEKRIT-7f3a"  # never a word a feed would contain by chance
BIG_FILE_BYTES = 50 * 1024 * 1024
DEEP = 100_000  # nesting levels: far past libyaml's C stack
OUTSIDE_DIR = "outside-seeds"  # sibling of the seed directory, for the escaping symlink
GOOD_TOPICS = ("AI", "Robots", "Machine Learning")
ACCEPTED_DATE = datetime(2021, 6, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Outcome:
    status: str  # "rejected" | "accepted" | "draft" | "ignored"
    field: str | None = None
    message: str = ""
    values: dict[str, Any] = dataclasses.field(default_factory=dict)
    warnings: frozenset[str] = frozenset()


def rejected(field_name: str, message: str) -> Outcome:
    return Outcome("rejected", field_name, message)


def accepted(warnings: tuple[str, ...] = (), **values: Any) -> Outcome:
    return Outcome("accepted", values=values, warnings=frozenset(warnings))


DRAFT = Outcome("draft")
IGNORED = Outcome("ignored")


@dataclass(frozen=True)
class Case:
    name: str
    group: str
    path: str  # relative path; may hold surrogate escapes for a non-UTF-8 name
    outcome: Outcome
    write: Callable[[Path], None] = dataclasses.field(repr=False, compare=False)

    @property
    def shown(self) -> str:
        """The path as the service prints it: non-UTF-8 bytes as `\\xNN`, control
        characters escaped (`\\n`), so a file name cannot forge log lines."""
        text = self.path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        return "".join(
            char.encode("unicode_escape").decode() if _is_control(char) else char for char in text
        )

    @property
    def link(self) -> str:
        return case_link(self.name)


def _is_control(char: str) -> bool:
    return ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F or char in "\u2028\u2029"


def case_link(name: str) -> str:
    return f"https://adversarial.example/{name}"


def secret(name: str) -> str:
    return f"{SECRET_MARK}-{name}"


def front(name: str, **overrides: Any) -> dict[str, Any]:
    """A valid article's fields for case `name`; None in overrides removes a key."""
    fields: dict[str, Any] = {
        "title": f"Case {name}",
        "excerpt": f"Excerpt of case {name}.",
        "publishedDateTime": "2021-06-01T12:00:00Z",
        "webUrl": case_link(name),
        "published": True,
        "topics": ["Adversarial"],
        "secured": secret(name),
    }
    fields.update(overrides)
    return {key: value for key, value in fields.items() if value is not None}


def seed_bytes(fields: dict[str, Any], body: str = "Body text.\n") -> bytes:
    text = yaml.safe_dump(fields, allow_unicode=True, sort_keys=False, width=1 << 20)
    return f"---\n{text}---\n{body}".encode()


def raw_seed(name: str, yaml_lines: str, body: str = "") -> bytes:
    """Front matter from raw YAML lines plus the usual link, date and secret."""
    return (
        f"---\nwebUrl: {case_link(name)}\npublishedDateTime: 2021-06-01T12:00:00Z\n"
        f"secured: {secret(name)}\n{yaml_lines}\n---\n{body}"
    ).encode()


# --- the good articles -------------------------------------------------------------------


@dataclass(frozen=True)
class Good:
    path: str
    fields: dict[str, Any]

    @property
    def link(self) -> str:
        return self.fields["webUrl"]

    @property
    def title(self) -> str:
        return self.fields["title"]

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(self.fields["topics"])


def good_articles(count: int = 12) -> list[Good]:
    articles = []
    for n in range(count):
        topics = [GOOD_TOPICS[n % 3], GOOD_TOPICS[(n + 1) % 3]]
        fields = {
            "category": "news",
            "title": f"Good article {n}",
            "excerpt": f"A perfectly ordinary article, number {n}.",
            "publishedDateTime": f"2021-05-{n + 1:02d}T08:00:00Z",
            "webUrl": f"https://good.example/articles/{n}",
            "type": "article",
            "quality": 60,
            "published": True,
            "provider": {"name": "Good News", "domain": "good.example"},
            "topics": topics,
            "secured": secret(f"good-{n}"),
        }
        articles.append(Good(f"good/good-{n:02d}.md", fields))
    return articles


# --- the cases -----------------------------------------------------------------------------


def _file(path: str, data: bytes | Callable[[], bytes]) -> Callable[[Path], None]:
    def write(root: Path) -> None:
        target = os.path.join(os.fsencode(root), os.fsencode(path))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as handle:
            handle.write(data() if callable(data) else data)

    return write


def _cases() -> list[Case]:
    cases: list[Case] = []

    def add(
        name: str,
        group: str,
        outcome: Outcome,
        data: bytes | Callable[[], bytes],
        path: str | None = None,
    ) -> None:
        relative = path or f"{group}/{name}.md"
        cases.append(Case(name, group, relative, outcome, _file(relative, data)))

    def ok(name: str, **values: Any) -> dict[str, Any]:
        return {"title": f"Case {name}", "link": case_link(name), **values}

    # Front matter
    g = "front-matter"
    add("empty", g, rejected("(file)", "empty file"), b"")
    add("whitespace-only", g, rejected("(file)", "empty file"), b"  \n\t\n\n")
    add(
        "no-front-matter",
        g,
        rejected("(front matter)", "must start with a '---' line"),
        b"# Just a title\n\nSome markdown text.\n",
    )
    add(
        "unterminated",
        g,
        rejected("(front matter)", "no closing '---' line"),
        b"---\ntitle: Never closed\nwebUrl: https://adversarial.example/unterminated\n",
    )
    add(
        "yaml-syntax-error",
        g,
        rejected("(yaml)", "invalid YAML"),
        raw_seed("yaml-syntax-error", "title: [unclosed, list\nexcerpt: x"),
    )
    add(
        "tab-indentation",
        g,
        rejected("(yaml)", "invalid YAML"),
        raw_seed("tab-indentation", "title: ok\nprovider:\n\tname: tabbed"),
    )
    add(
        "empty-front-matter",
        g,
        rejected("(front matter)", "front matter is empty"),
        b"---\n---\nbody\n",
    )
    add(
        "scalar-front-matter",
        g,
        rejected("(front matter)", "must be a mapping"),
        b"---\njust a sentence\n---\n",
    )
    add(
        "list-front-matter",
        g,
        rejected("(front matter)", "must be a mapping"),
        b"---\n- title\n- webUrl\n---\n",
    )
    add(
        "two-documents",
        g,
        rejected("(yaml)", "invalid YAML"),
        raw_seed("two-documents", "title: one\n...\ntitle: two"),
    )
    add(
        "body-with-dashes",
        g,
        accepted(**ok("body-with-dashes")),
        seed_bytes(
            front("body-with-dashes"),
            body="Intro\n---\ntitle: Not the title\nwebUrl: javascript:alert(1)\n---\n",
        ),
    )
    add(
        "missing-title",
        g,
        rejected("title", "is required"),
        seed_bytes(front("missing-title", title=None)),
    )
    add(
        "missing-date",
        g,
        rejected("publishedDateTime", "is required"),
        seed_bytes(front("missing-date", publishedDateTime=None)),
    )
    add(
        "missing-link",
        g,
        rejected("webUrl", "a link is required"),
        seed_bytes(front("missing-link", webUrl=None)),
    )

    # Encoding
    g = "encoding"
    add("utf8-bom", g, accepted(**ok("utf8-bom")), b"\xef\xbb\xbf" + seed_bytes(front("utf8-bom")))
    add(
        "crlf",
        g,
        accepted(**ok("crlf", excerpt="Line one line two")),
        seed_bytes(front("crlf", excerpt="Line one\nline two")).replace(b"\n", b"\r\n"),
    )
    add(
        "utf16-le",
        g,
        rejected("(encoding)", "UTF-16"),
        b"\xff\xfe" + seed_bytes(front("utf16-le")).decode().encode("utf-16-le"),
    )
    add(
        "utf16-be",
        g,
        rejected("(encoding)", "UTF-16"),
        b"\xfe\xff" + seed_bytes(front("utf16-be")).decode().encode("utf-16-be"),
    )
    add(
        "utf16-no-bom",
        g,
        rejected("(encoding)", "UTF-8"),
        seed_bytes(front("utf16-no-bom")).decode().encode("utf-16-le"),
    )
    add(
        "latin1",
        g,
        rejected("(encoding)", "not valid UTF-8"),
        seed_bytes(front("latin1", title="Café à la crème")).decode().encode("latin-1"),
    )
    add("binary-garbage", g, rejected("(encoding)", "UTF-8"), random.Random(5).randbytes(4096))
    add(
        "binary-in-front-matter",
        g,
        rejected("(encoding)", "not valid UTF-8"),
        b"---\ntitle: " + random.Random(6).randbytes(512).replace(b"\n", b"") + b"\n---\n",
    )
    add(
        "utf8-surrogate-bytes",
        g,
        rejected("(encoding)", "not valid UTF-8"),
        raw_seed("utf8-surrogate-bytes", "title: xSURROGATEy").replace(
            b"SURROGATE", b"\xed\xa0\x80"
        ),
    )
    add(
        "mojibake",
        g,
        accepted(**ok("mojibake", title="Café déjà vu")),
        seed_bytes(front("mojibake", title="CafÃ© dÃ©jÃ  vu")),
    )
    add(  # YAML refuses a NUL: it is dropped first, and the repair reported
        "nul-byte-in-yaml",
        g,
        accepted(("(encoding)",), **ok("nul-byte-in-yaml", title="ab")),
        raw_seed("nul-byte-in-yaml", "title: a\x00b"),
    )

    # YAML attacks
    g = "yaml"
    add(
        "python-object-apply",
        g,
        rejected("(yaml)", "could not determine a constructor"),
        raw_seed(
            "python-object-apply",
            "title: !!python/object/apply:os.system ['touch /tmp/feedservice-pwned']",
        ),
    )
    add(
        "python-name",
        g,
        rejected("(yaml)", "could not determine a constructor"),
        raw_seed("python-name", "title: Case python-name\nx: !!python/name:os.system"),
    )
    add(
        "custom-tag",
        g,
        rejected("(yaml)", "could not determine a constructor"),
        raw_seed("custom-tag", "title: !include /etc/passwd"),
    )
    laughs = ["lol0: &lol0 lol"] + [
        f"lol{i}: &lol{i} [" + ", ".join([f"*lol{i - 1}"] * 10) + "]" for i in range(1, 12)
    ]
    add(
        "billion-laughs",
        g,
        rejected("(yaml)", "aliases"),
        raw_seed("billion-laughs", "title: laughs\n" + "\n".join(laughs) + "\ntopics: *lol11"),
    )
    add(
        "small-alias-merge",
        g,
        accepted(**ok("small-alias-merge", excerpt="Shared excerpt")),
        raw_seed(
            "small-alias-merge",
            "defaults: &d {excerpt: Shared excerpt}\n<<: *d\ntitle: Case small-alias-merge",
        ),
    )
    add(
        "recursive-alias",
        g,
        accepted(("topics",), **ok("recursive-alias", topics=("AI",))),
        raw_seed("recursive-alias", "title: Case recursive-alias\ntopics: &t [*t, AI]"),
    )
    add(
        "fifty-megabytes",
        g,
        rejected("(file)", "larger than"),
        lambda: raw_seed("fifty-megabytes", "title: big\nexcerpt: >\n  " + "x" * BIG_FILE_BYTES),
    )
    add(
        "deep-flow-sequence",
        g,
        rejected("(yaml)", "nested more than"),
        raw_seed("deep-flow-sequence", "title: deep\ntopics: " + "[" * DEEP + "]" * DEEP),
    )
    add(
        "deep-flow-mapping",
        g,
        rejected("(yaml)", "nested more than"),
        raw_seed("deep-flow-mapping", "title: deep\ntopics: " + "{a: " * DEEP + "1" + "}" * DEEP),
    )
    add(
        "deep-flow-unclosed",
        g,
        rejected("(yaml)", "nested more than"),
        raw_seed("deep-flow-unclosed", "title: deep\ntopics: " + "[" * DEEP),
    )
    add(
        "deep-block-sequence",
        g,
        rejected("(yaml)", "nested more than"),
        raw_seed("deep-block-sequence", "title: deep\ntopics:\n  " + "- " * DEEP + "AI"),
    )
    add(
        "deep-block-keys",
        g,
        rejected("(yaml)", "nested more than"),
        raw_seed("deep-block-keys", "title: deep\n" + "? " * DEEP + "x"),
    )
    add(
        "deep-block-mapping",
        g,
        rejected("(yaml)", "nested more than"),
        raw_seed(
            "deep-block-mapping",
            "title: deep\nprovider:\n"
            + "".join(" " * (level + 1) + "k:\n" for level in range(1000))
            + " " * 1001
            + "v",
        ),
    )
    add(
        "deep-mixed",
        g,
        rejected("(yaml)", "nested more than"),
        raw_seed("deep-mixed", "title: deep\ntopics:\n  " + "- " * 40 + "[" * DEEP + "]" * DEEP),
    )
    add(
        "too-many-values",
        g,
        rejected("(yaml)", "more than"),
        raw_seed("too-many-values", "title: many\ntopics: [" + ",".join(["a"] * 300_000) + "]"),
    )
    add(
        "sexagesimal-int",
        g,
        rejected("quality", "whole number"),
        raw_seed("sexagesimal-int", "title: slow\nquality: 1" + ":1" * 200_000),
    )
    add(
        "huge-int",
        g,
        rejected("quality", "whole number"),
        raw_seed("huge-int", "title: huge\nquality: " + "9" * 5000),
    )
    add(
        "binary-tag",
        g,
        rejected("excerpt", "must be text"),
        raw_seed("binary-tag", "title: Case binary-tag\nexcerpt: !!binary aGVsbG8="),
    )
    add(
        "duplicate-keys",
        g,
        accepted(**ok("duplicate-keys")),
        raw_seed("duplicate-keys", "title: First title\ntitle: Case duplicate-keys"),
    )

    # Wrong types
    g = "types"
    add(
        "topics-as-string",
        g,
        accepted(**ok("topics-as-string", topics=("AI",))),
        seed_bytes(front("topics-as-string", topics="AI")),
    )
    add(
        "title-as-list",
        g,
        rejected("title", "must be text, got a list"),
        seed_bytes(front("title-as-list", title=["a", "b"])),
    )
    add(
        "title-as-mapping",
        g,
        rejected("title", "must be text, got a mapping"),
        seed_bytes(front("title-as-mapping", title={"en": "x"})),
    )
    add(
        "title-as-number",
        g,
        accepted(**ok("title-as-number", title="42")),
        seed_bytes(front("title-as-number", title=42)),
    )
    add(
        "title-as-float",
        g,
        accepted(**ok("title-as-float", title="3.14")),
        seed_bytes(front("title-as-float", title=3.14)),
    )
    add(
        "title-as-bool", g, rejected("title", "true/false"), raw_seed("title-as-bool", "title: yes")
    )
    add("title-null", g, rejected("title", "is required"), raw_seed("title-null", "title: ~"))
    add(
        "title-markup-only",
        g,
        rejected("title", "is empty"),
        seed_bytes(front("title-markup-only", title="<b></b><br/>")),
    )
    for name, value, expected in (
        ("date-space-separated", "2021-06-01 12:00", ACCEPTED_DATE),
        ("date-basic-format", "20210601T120000Z", ACCEPTED_DATE),
        ("date-rfc2822", "Tue, 01 Jun 2021 12:00:00 GMT", ACCEPTED_DATE),
        ("date-offset", "2021-06-01T14:00:00+02:00", ACCEPTED_DATE),
        ("date-negative-offset", "2021-06-01T02:00:00-10:00", ACCEPTED_DATE),
        (
            "date-fraction",
            "2021-06-01T12:00:00.123456Z",
            ACCEPTED_DATE + timedelta(microseconds=123456),
        ),
        ("date-only", "2021-06-01", ACCEPTED_DATE - timedelta(hours=12)),
        ("date-far-future", "2999-12-31T00:00:00Z", datetime(2999, 12, 31, tzinfo=UTC)),
        ("date-far-past", "1000-01-01T00:00:00Z", datetime(1000, 1, 1, tzinfo=UTC)),
        ("date-year-one", "0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
    ):
        add(
            name,
            g,
            accepted(**ok(name, published=expected)),
            seed_bytes(front(name, publishedDateTime=value)),
        )
    add(
        "date-integer",
        g,
        accepted(**ok("date-integer", published=ACCEPTED_DATE)),
        raw_seed("date-integer", "title: Case date-integer").replace(
            b"2021-06-01T12:00:00Z", str(int(ACCEPTED_DATE.timestamp())).encode()
        ),
    )
    add(
        "date-yaml-offset",
        g,
        accepted(
            **ok(
                "date-yaml-offset",
                published=ACCEPTED_DATE.astimezone(timezone(timedelta(hours=5, minutes=30))),
            )
        ),
        raw_seed("date-yaml-offset", "title: Case date-yaml-offset").replace(
            b"2021-06-01T12:00:00Z", b"2021-06-01T17:30:00+05:30"
        ),
    )
    for name, value, message in (
        ("date-us-format", "06/01/2021", "ISO 8601"),
        ("date-words", "yesterday", "ISO 8601"),
        ("date-month-13", "2021-13-01", "ISO 8601"),
        ("date-february-30", "2021-02-30T10:00:00Z", "ISO 8601"),
        ("date-offset-99h", "2021-06-01T12:00:00+99:00", "ISO 8601"),
        ("date-year-zero", "0000-01-01", "ISO 8601"),
        ("date-beyond-9999", "9999-12-31T23:59:59-14:00", "representable range"),
        ("date-before-year-one", "0001-01-01T00:00:00+14:00", "representable range"),
        ("date-epoch-overflow", "1e400", "ISO 8601"),
        ("date-huge-integer", "99999999999999999999", "out of range"),
        ("date-list", "[2021, 6, 1]", "got a list"),
        ("date-bool", "true", "true/false"),
    ):
        add(
            name,
            g,
            rejected("publishedDateTime", message),
            raw_seed(name, f"title: Case {name}").replace(
                b"publishedDateTime: 2021-06-01T12:00:00Z", f"publishedDateTime: {value}".encode()
            ),
        )
    add(
        "secret-pasted-into-date",
        g,
        rejected("publishedDateTime", "ISO 8601"),
        seed_bytes(
            front(
                "secret-pasted-into-date",
                publishedDateTime=secret("secret-pasted-into-date"),
            )
        ),
    )
    add(
        "quality-as-text",
        g,
        rejected("quality", "whole number"),
        seed_bytes(front("quality-as-text", quality="high")),
    )
    add("published-no", g, DRAFT, seed_bytes(front("published-no", published=False)))
    add(
        "published-maybe",
        g,
        rejected("published", "true or false"),
        seed_bytes(front("published-maybe", published="maybe")),
    )
    add(
        "topics-as-mapping",
        g,
        rejected("topics", "list of topic names"),
        seed_bytes(front("topics-as-mapping", topics={"AI": True})),
    )
    add(
        "provider-as-text",
        g,
        rejected("provider", "mapping"),
        seed_bytes(front("provider-as-text", provider="Reuters")),
    )
    add(
        "images-as-text",
        g,
        rejected("images", "must be a list"),
        seed_bytes(front("images-as-text", images="https://img.example/a.png")),
    )
    add(
        "weblink-as-number",
        g,
        rejected("webUrl", "a link is required"),
        seed_bytes(front("weblink-as-number", webUrl=12345)),
    )

    # Hostile text
    g = "text"
    add(
        "control-characters",
        g,
        accepted(**ok("control-characters", title="Bad[31mtitle with NUL")),
        raw_seed(
            "control-characters", 'title: "Bad\\0\\x01\\a\\e[31mtitle\\x7f\\x85 with \\x0bNUL\\x00"'
        ),
    )
    add(
        "script-and-img",
        g,
        accepted(**ok("script-and-img", title="alert(1)Hello", excerpt="World")),
        seed_bytes(
            front(
                "script-and-img",
                title="<script>alert(1)</script>Hello",
                excerpt='<img src=x onerror="alert(1)">World',
            )
        ),
    )
    add(
        "entity-encoded-script",
        g,
        accepted(**ok("entity-encoded-script", title="alert(1) safe")),
        seed_bytes(
            front("entity-encoded-script", title="&lt;script&gt;alert(1)&lt;/script&gt; safe")
        ),
    )
    add(
        "nested-tag-trick",
        g,
        accepted(**ok("nested-tag-trick", title="x")),
        seed_bytes(front("nested-tag-trick", title="<<script>script>x")),
    )
    rtl = "مرحبا بالعالم — שלום 👋🏽🇺🇳 👨‍👩‍👧"
    add(
        "rtl-and-emoji",
        g,
        accepted(**ok("rtl-and-emoji", title=rtl, excerpt=rtl)),
        seed_bytes(front("rtl-and-emoji", title=rtl, excerpt=rtl)),
    )
    add(
        "title-100kb",
        g,
        accepted(("title",), **ok("title-100kb", title="W" * 299 + "…")),
        seed_bytes(front("title-100kb", title="W" * 100_000)),
    )
    add(
        "excerpt-100kb",
        g,
        accepted(("excerpt",), **ok("excerpt-100kb", excerpt="é" * 1999 + "…")),
        seed_bytes(front("excerpt-100kb", excerpt="é" * 100_000)),
    )
    many = [f"Topic {n}" for n in range(10_000)]
    add(
        "ten-thousand-topics",
        g,
        accepted(("topics",), **ok("ten-thousand-topics", topics=tuple(many[:50]))),
        seed_bytes(front("ten-thousand-topics", topics=many)),
    )
    add(
        "duplicate-topics",
        g,
        accepted(**ok("duplicate-topics", topics=("AI", "A.I."))),
        seed_bytes(front("duplicate-topics", topics=["AI", "ai", " AI ", "A.I.", "AI"])),
    )
    add(
        "empty-topics",
        g,
        accepted(**ok("empty-topics", topics=("Robots",))),
        seed_bytes(front("empty-topics", topics=["", "   ", "<b></b>", "Robots"])),
    )
    for name, topic, cleaned in (
        ("same-slug-a", "Same Slug", "Same Slug"),
        ("same-slug-b", "same-slug", "same-slug"),
        ("same-slug-c", "SAME \t slug!", "SAME slug!"),
    ):
        add(
            name,
            g,
            accepted(**ok(name, topics=(cleaned,))),
            seed_bytes(front(name, topics=[topic])),
        )
    add(
        "non-ascii-topic",
        g,
        accepted(**ok("non-ascii-topic", topics=("日本語",))),
        seed_bytes(front("non-ascii-topic", topics=["日本語"])),
    )
    add(
        "script-topic",
        g,
        accepted(**ok("script-topic", topics=("x",))),
        seed_bytes(front("script-topic", topics=["<script>x</script>"])),
    )

    # Hostile links
    g = "links"
    for name, url in (
        ("javascript-link", "javascript:alert(document.cookie)"),
        ("javascript-mixed-case", "JaVaScRiPt:alert(1)"),
        ("javascript-control-prefix", "\x01 javascript:alert(1)"),
        ("data-link", "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="),
        ("vbscript-link", "vbscript:msgbox(1)"),
        ("relative-link", "/articles/relative"),
        ("protocol-relative-link", "//evil.example/x"),
        ("no-host-link", "https:///path-only"),
        ("bad-port-link", "https://adversarial.example:99999/x"),
    ):
        add(name, g, rejected("webUrl", "a link is required"), seed_bytes(front(name, webUrl=url)))
    add(
        "javascript-with-fallback",
        g,
        accepted(
            ("webUrl",),
            title="Case javascript-with-fallback",
            link="https://adversarial.example/fallback",
        ),
        seed_bytes(
            front(
                "javascript-with-fallback",
                webUrl="javascript:alert(1)",
                originalUrl="https://adversarial.example/fallback",
            )
        ),
    )
    add(
        "tab-inside-scheme",
        g,
        accepted(title="Case tab-inside-scheme", link="https://adversarial.example/tab"),
        seed_bytes(front("tab-inside-scheme", webUrl="ht\ttps://adversarial.example/tab")),
    )
    add(
        "newline-inside-javascript",
        g,
        rejected("webUrl", "a link is required"),
        seed_bytes(front("newline-inside-javascript", webUrl="java\nscript:alert(1)")),
    )
    add(
        "uppercase-scheme",
        g,
        accepted(title="Case uppercase-scheme", link="https://adversarial.example/upper"),
        seed_bytes(front("uppercase-scheme", webUrl="HTTPS://adversarial.example/upper")),
    )
    add(
        "url-with-spaces",
        g,
        accepted(title="Case url-with-spaces", link="https://adversarial.example/a%20b%20c"),
        seed_bytes(front("url-with-spaces", webUrl="https://adversarial.example/a b c")),
    )
    add(
        "hostile-image-and-related",
        g,
        accepted(
            ("images", "related", "ampWebUrl"),
            **ok("hostile-image-and-related", images=(), related=(), amp_url=None),
        ),
        seed_bytes(
            front(
                "hostile-image-and-related",
                images=[{"url": "javascript:alert(1)"}, {"url": "data:image/png;base64,AAAA"}],
                related=[{"title": "Evil", "webUrl": "javascript:alert(1)"}],
                ampWebUrl="data:text/html,<script>alert(1)</script>",
            )
        ),
    )

    # Filesystem
    g = "filesystem"
    add(
        "inside-directory-named-md",
        g,
        accepted(**ok("inside-directory-named-md")),
        seed_bytes(front("inside-directory-named-md")),
        path="fs/dir.md/inner.md",
    )
    add(
        "non-utf8-name",
        g,
        accepted(**ok("non-utf8-name")),
        seed_bytes(front("non-utf8-name")),
        path=os.fsdecode(b"fs/name-\xff\xfe-latin.md"),
    )
    add(
        "control-characters-in-name",
        g,
        accepted(**ok("control-characters-in-name")),
        seed_bytes(front("control-characters-in-name")),
        path="fs/tab\tand\nnewline.md",
    )
    add(
        "log-forging-name",
        g,
        rejected("(front matter)", "no closing"),
        b"---\ntitle: half\n",
        path=f"fs/x.md\n{FORGED} fake error.md",
    )
    deep_file = "fs/deep" + "/n" * 40 + "/x.md"
    cases.append(
        Case(
            "deeply-nested-directories",
            g,
            "fs/deep" + "/n" * 31,  # the first directory past the limit is reported
            rejected("(directory)", "nested more than"),
            _file(deep_file, seed_bytes(front("deeply-nested-directories"))),
        )
    )
    add(
        "non-utf8-name-bad",
        g,
        rejected("(front matter)", "no closing"),
        b"---\ntitle: half\n",
        path=os.fsdecode(b"fs/bad-\xe9.md"),
    )
    add(
        "truncated-write",
        g,
        rejected("(front matter)", "no closing"),
        seed_bytes(front("truncated-write"))[:60],
    )
    add("hidden-file", g, IGNORED, seed_bytes(front("hidden-file")), path="fs/.hidden.md")
    add("wrong-suffix", g, IGNORED, seed_bytes(front("wrong-suffix")), path="fs/notes.yaml")
    add("swap-file", g, IGNORED, b"\x00garbage", path="fs/.article.md.swp")
    cases.append(
        Case(
            "symlink-outside-root",
            g,
            "fs/escape.md",
            rejected("(file)", "symlink points outside"),
            _symlink_outside,
        )
    )
    cases.append(
        Case(
            "dangling-symlink",
            g,
            "fs/dangling.md",
            IGNORED,
            _symlink("fs/dangling.md", "does-not-exist.md"),
        )
    )
    cases.append(Case("symlink-loop", g, "fs/loop.md", IGNORED, _symlink("fs/loop.md", "loop.md")))
    cases.append(Case("fifo", g, "fs/fifo.md", IGNORED, _fifo("fs/fifo.md")))
    cases.append(
        Case(
            "empty-directory-named-md",
            g,
            "fs/empty.md",
            IGNORED,
            lambda root: (root / "fs" / "empty.md").mkdir(parents=True),
        )
    )
    return cases


OUTSIDE_TITLE = "Outside title that must never be served"


def _symlink_outside(root: Path) -> None:
    outside = root.parent / OUTSIDE_DIR
    outside.mkdir(exist_ok=True)
    target = outside / "target.md"
    target.write_bytes(seed_bytes(front("symlink-outside-root", title=OUTSIDE_TITLE)))
    (root / "fs").mkdir(parents=True, exist_ok=True)
    os.symlink(target, root / "fs" / "escape.md")


def _symlink(relative: str, target: str) -> Callable[[Path], None]:
    def write(root: Path) -> None:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, root / relative)

    return write


def _fifo(relative: str) -> Callable[[Path], None]:
    def write(root: Path) -> None:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(root / relative)

    return write


CASES: list[Case] = _cases()
CASE_NAMES = [case.name for case in CASES]
assert len(set(CASE_NAMES)) == len(CASE_NAMES), "case names must be unique"


def write_good(root: Path, goods: list[Good] | None = None) -> list[Good]:
    goods = good_articles() if goods is None else goods
    for good in goods:
        path = root / good.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(seed_bytes(good.fields))
    return goods


def write_corpus(root: Path, cases: list[Case] | None = None) -> tuple[list[Case], list[Good]]:
    """Write the good articles and every case (or the given ones) under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    goods = write_good(root)
    chosen = CASES if cases is None else cases
    for case in chosen:
        case.write(root)
    return chosen, goods


def case_named(name: str) -> Case:
    return next(case for case in CASES if case.name == name)
