"""Two more real readers, from other ecosystems: Go's gofeed and an npm feed parser.

feedparser (`consumers.read_feed`) is the reference. gofeed (Debian's sources, built here
offline from tests/readers/gofeed.go) and @rowanmanning/feed-parser (locked in
tests/readers/package-lock.json) were written by other people against the same specs. Each
reads every page of every RSS and Atom feed of the real-world seeds and must see what
feedparser sees: the item count, and per item its id, link, title and dates (instants)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import feedparser
import pytest
import yaml
from conftest import REALWORLD, REPO, make_site
from consumers import read_feed
from lxml import etree

READERS = REPO / "tests" / "readers"
GOCODE = Path("/usr/share/gocode")  # Debian's GOPATH of packaged Go sources
GOFEED_SOURCE = GOCODE / "src" / "github.com" / "mmcdole" / "gofeed"
NODE_PARSER = READERS / "node_modules" / "@rowanmanning" / "feed-parser"
ATOM = "{http://www.w3.org/2005/Atom}"
FORMATS = ("rss", "atom")


@dataclass(frozen=True)
class Seen:
    """One item as a reader saw it, normalised: titles by whitespace, dates to instants."""

    id: str
    link: str
    title: str
    published: int | None
    updated: int | None


@dataclass(frozen=True)
class Document:
    """One page of one feed in one format, as served, with what feedparser sees in it."""

    url: str  # the path the site serves it at, e.g. /topics/ai.atom?page=2
    fmt: str
    file: Path
    expected: list[Seen]


def instant(text: str) -> int | None:
    """A date (RFC 822 in RSS, ISO 8601 in Atom and the readers' JSON) as whole seconds
    since the epoch: RSS dates and feedparser's parsed dates stop at the second and a JS
    Date at the millisecond, so an Atom date's microseconds are no disagreement."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = parsedate_to_datetime(text)
    if moment.tzinfo is None:  # `-0000` in RFC 822: UTC, as feedparser reads it
        moment = moment.replace(tzinfo=UTC)
    return math.floor(moment.timestamp())


def whatwg_link(link: str) -> str:
    """An http(s) link as a WHATWG URL parser spells it: @rowanmanning/feed-parser returns
    every link as Node's `new URL(link).href`, which lowercases the host, drops a default
    port and gives an empty path a `/`. Other hosts are left alone: Node turns a non-ASCII
    or percent-encoded one into IDNA, a respelling our links should not need."""
    parts = urlsplit(link)
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    if default is None or not parts.netloc.isascii() or any(c in parts.netloc for c in "%@"):
        return link
    host = parts.netloc.lower().removesuffix(f":{default}")
    return parts._replace(scheme=parts.scheme.lower(), netloc=host, path=parts.path or "/").geturl()


def seen(id: str, link: str, title: str, published: str, updated: str) -> Seen:
    """Normalise one reader's item. RSS items have no updated date; where a reader gives
    none, the item's last change is its publication (@rowanmanning/feed-parser falls back
    this way by design, gofeed and feedparser leave it empty), so all three compare alike."""
    title = " ".join(title.split())
    return Seen(id, link, title, instant(published), instant(updated or published))


def reference(body: bytes, fmt: str) -> list[Seen]:
    """feedparser's items, through the checks `read_feed` makes (well formed, no bozo)."""
    _, items = read_feed(body, fmt)
    entries = feedparser.parse(body).entries
    return [
        seen(item.id, item.link, item.title, item.published, dict.get(entry, "updated", ""))
        for item, entry in zip(items, entries, strict=True)
    ]


def differences(
    document: Document, got: dict[str, Any], link: Callable[[str], str] = str
) -> list[str]:
    """What a reader saw differently from feedparser in `document`, one line each; `link`
    respells links the way that reader does."""
    where = f"{document.url}:"
    if "error" in got:
        return [f"{where} unreadable: {got['error']}"]
    problems = [] if got["type"] == document.fmt else [f"{where} read as {got['type']}"]
    items = [seen(**item) for item in got["items"]]
    if got["count"] != len(document.expected) or len(items) != got["count"]:
        problems.append(f"{where} {got['count']} items, feedparser {len(document.expected)}")
    for number, (want, have) in enumerate(zip(document.expected, items, strict=False), start=1):
        want, have = replace(want, link=link(want.link)), replace(have, link=link(have.link))
        for field in ("id", "link", "title", "published", "updated"):
            if getattr(want, field) != getattr(have, field):
                problems.append(
                    f"{where} item {number} ({want.id}) {field}: "
                    f"{getattr(have, field)!r}, feedparser {getattr(want, field)!r}"
                )
    return problems


def run_reader(command: list[str], files: list[Path]) -> list[dict[str, Any]]:
    """Run a reader over `files` at once: one JSON line comes back per file."""
    result = subprocess.run(
        [*command, *map(str, files)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(files), result.stdout[-2000:]
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="session")
def gofeed(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """tests/readers/gofeed.go built once per session, offline: GOPATH mode over Debian's
    packaged sources, no module proxy, no toolchain download, a build cache in a temp dir."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("go is not installed (apt-get install golang-go)")
    if not GOFEED_SOURCE.is_dir():
        pytest.skip(f"gofeed is not in {GOCODE} (apt-get install golang-github-mmcdole-gofeed-dev)")
    build = tmp_path_factory.mktemp("gofeed")
    environment = {
        **os.environ,
        "GOPATH": str(GOCODE),
        "GO111MODULE": "off",
        "GOFLAGS": "",  # no build flags from the caller's environment
        "GOPROXY": "off",
        "GOTOOLCHAIN": "local",
        "GOENV": "off",
        "GOCACHE": str(build / "cache"),
        "CGO_ENABLED": "0",
    }
    command = [go, "build", "-o", str(build / "gofeed"), "gofeed.go"]
    result = subprocess.run(command, cwd=READERS, env=environment, capture_output=True, text=True)
    assert result.returncode == 0, f"go build failed:\n{result.stderr}"
    return [str(build / "gofeed")]


@pytest.fixture(scope="session")
def node_parser() -> list[str]:
    """tests/readers/parse.mjs, once `npm ci` has installed the locked feed-parser."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (apt-get install nodejs)")
    if not (NODE_PARSER / "package.json").is_file():
        pytest.skip("@rowanmanning/feed-parser is not installed (npm ci --prefix tests/readers)")
    lock = json.loads((READERS / "package-lock.json").read_text())
    locked = lock["packages"]["node_modules/@rowanmanning/feed-parser"]["version"]
    installed = json.loads((NODE_PARSER / "package.json").read_text())["version"]
    assert installed == locked, "tests/readers/node_modules is stale: npm ci --prefix tests/readers"
    return [node, str(READERS / "parse.mjs")]


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> list[Document]:
    """Every page of every feed the real-world site lists in its OPML, in RSS and Atom."""
    if not REALWORLD.is_dir():
        pytest.skip("../shared/realworld is not beside the checkout")
    tmp = tmp_path_factory.mktemp("other-readers")
    config = yaml.safe_load((REPO / "config" / "feeds.yaml").read_text())
    config["topic_limit"] = 10  # the largest topic then spans pages
    (tmp / "feeds.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    site = make_site(REALWORLD, tmp / "feeds.yaml", tmp / "state")
    assert site.loader.catalog is not None
    base = config["base_url"]
    found: list[Document] = []
    for fmt in FORMATS:
        opml = etree.fromstring(site.get(f"/feeds.opml?format={fmt}").data)
        urls = [outline.get("xmlUrl") for outline in opml.iter("outline") if outline.get("xmlUrl")]
        keys = [urlsplit(url).path.lstrip("/").removesuffix(f".{fmt}") for url in urls]
        assert sorted(keys) == sorted(site.loader.catalog.feeds), "the OPML lists every feed"
        for key, url in zip(keys, urls, strict=True):
            items = 0
            next_url: str | None = url
            while next_url:
                path = next_url.removeprefix(base)
                response = site.get(path)
                assert response.status_code == 200, path
                file = tmp / f"{len(found):03d}.{fmt}"
                file.write_bytes(response.data)
                found.append(Document(path, fmt, file, reference(response.data, fmt)))
                items += len(found[-1].expected)
                links = etree.fromstring(response.data).iter(f"{ATOM}link")
                next_url = next((a.get("href") for a in links if a.get("rel") == "next"), None)
            assert items == len(site.loader.catalog.feeds[key].entries), (key, fmt)
    assert any("?page=" in document.url for document in found), "no paged feed was read"
    return found


# How each reader spells an item's link: gofeed and feedparser keep the href as written.
LINK_SPELLING: dict[str, Callable[[str], str]] = {"gofeed": str, "node_parser": whatwg_link}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("reader", LINK_SPELLING)
def test_reader_sees_what_feedparser_sees(
    reader: str, fmt: str, documents: list[Document], request: pytest.FixtureRequest
) -> None:
    """Each item as feedparser reads it, on every page of every feed, in one reader run."""
    command: list[str] = request.getfixturevalue(reader)
    chosen = [document for document in documents if document.fmt == fmt]
    results = run_reader(command, [document.file for document in chosen])
    problems = [
        line
        for document, got in zip(chosen, results, strict=True)
        for line in differences(document, got, LINK_SPELLING[reader])
    ]
    assert problems == [], "\n".join(problems[:40])


@pytest.mark.parametrize("reader", LINK_SPELLING)
def test_comparison_catches_a_changed_feed(
    reader: str, documents: list[Document], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The comparison can fail: a reader given an edited body (a title, a date, a link and a
    dropped item) disagrees with feedparser's reading of the served one."""
    command: list[str] = request.getfixturevalue(reader)
    document = max(documents, key=lambda d: len(d.expected) if d.fmt == "atom" else 0)
    root = etree.parse(document.file).getroot()
    entries = root.findall(f"{ATOM}entry")
    entries[0].find(f"{ATOM}title").text = "Something else"
    entries[0].find(f"{ATOM}published").text = "1999-01-01T00:00:00Z"
    entries[1].find(f"{ATOM}link[@rel='alternate']").set("href", "https://example.com/moved")
    root.remove(entries[-1])
    file = tmp_path / "edited.atom"
    file.write_bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8"))
    got = run_reader(command, [file])[0]
    problems = differences(replace(document, file=file), got, LINK_SPELLING[reader])
    text = "\n".join(problems)
    assert len(problems) == 4, text
    assert f" {len(document.expected) - 1} items, feedparser {len(document.expected)}" in text
    assert " item 1 " in problems[1] and "title: 'Something else'" in problems[1], text
    assert " item 1 " in problems[2] and "published: 915148800," in problems[2], text
    assert " item 2 " in problems[3] and "link: 'https://example.com/moved'" in problems[3], text


def test_whatwg_link_spelling() -> None:
    """Only the respellings Node makes of ASCII http(s) links, nothing more."""
    assert whatwg_link("HTTPS://Example.COM:443") == "https://example.com/"
    assert whatwg_link("http://example.com:8080/A?b=C#d") == "http://example.com:8080/A?b=C#d"
    assert whatwg_link("https://bücher.example/") == "https://bücher.example/"
    assert whatwg_link("https://B%C3%BCcher.example") == "https://B%C3%BCcher.example"
