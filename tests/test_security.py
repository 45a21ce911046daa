"""Security headers, escaping and secrets, on the Flask app and on the live server.

HTML pages send a strict Content-Security-Policy (it starts from `default-src 'none'`
and the page needs nothing it does not allow) and `nosniff`; feeds send `nosniff`.
Hostile seed text is rendered inert on every page. The `secured` field never appears
in any response, header, log line, CLI output or the store on disk.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from adversarial import SECRET_MARK, case_named, write_corpus
from conftest import REPO, LiveServer, Site, make_site, start_server, write_config
from lxml import etree

pytestmark = pytest.mark.timeout(120)
ATOM = "http://www.w3.org/2005/Atom"
TAG_START = re.compile(r"<[A-Za-z/!?]")  # what an HTML parser would take for markup
HOSTILE_CASES = [
    "script-and-img",
    "entity-encoded-script",
    "nested-tag-trick",
    "rtl-and-emoji",
    "control-characters",
    "script-topic",
    "hostile-image-and-related",
    "javascript-with-fallback",
    "title-100kb",
    "same-slug-a",
]
FEEDS = [
    "/feeds/all.rss",
    "/feeds/all.atom",
    "/feeds/all.json",
    "/topics/x.rss",
    "/topics/adversarial.atom",
    "/topics/adversarial.json",
]
HTML_PAGES = ["/", "/feeds/all/", "/topics/adversarial/", "/topics/x/", "/topics/same-slug/"]
OTHER = [
    "/feeds.opml",
    "/topics.opml?format=rss",
    "/healthz",
    "/metrics",
    "/nope",
    "/topics/ai.rss?page=x",
    "/static/style.css",
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("security")
    seeds = base / "seeds"
    write_corpus(seeds, [case_named(name) for name in HOSTILE_CASES])
    config = write_config(
        base / "feeds.yaml",
        title="Security <script>alert(1)</script>",
        base_url="http://feeds.test",
        reload_interval=60,
    )
    return seeds, config


@pytest.fixture(scope="module")
def loaded(site: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The real loader into a store in a temp dir, served by a worker's app (Flask client).
    (Module-scoped: conftest's make_site, which site_factory wraps per test.)"""
    loaded = make_site(*site, tmp_path_factory.mktemp("state"))
    yield loaded
    loaded.store.close()


@pytest.fixture(scope="module")
def flask_client(loaded: Site) -> Any:
    return loaded.client


@pytest.fixture(scope="module")
def live(site: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(*site, tmp_path_factory.mktemp("live"), workers=1)
    yield server
    server.stop()


def fetch(
    source: Any, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    if isinstance(source, LiveServer):
        status, got, body = source.get(path, headers)
        return status, {key.lower(): value for key, value in got.items()}, body
    response = source.get(path, headers=headers or {})
    return (
        response.status_code,
        {k.lower(): v for k, v in response.headers.items()},
        response.get_data(),
    )


def both(flask_client: Any, live: LiveServer) -> list[Any]:
    return [flask_client, live]


def csp_directives(value: str) -> dict[str, list[str]]:
    directives = {}
    for part in value.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def test_html_pages_send_strict_csp_and_nosniff(flask_client: Any, live: LiveServer) -> None:
    for source in both(flask_client, live):
        for path in HTML_PAGES:
            status, headers, _ = fetch(source, path)
            assert status == 200, path
            assert headers["content-type"].startswith("text/html")
            csp = headers["content-security-policy"]
            assert csp.startswith("default-src 'none'"), csp
            directives = csp_directives(csp)
            assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
            assert "script-src" not in directives  # no scripts at all: default-src 'none'
            assert directives["frame-ancestors"] == ["'none'"]
            assert directives["base-uri"] == ["'none'"]
            assert headers["x-content-type-options"] == "nosniff"


def test_html_pages_need_nothing_the_csp_forbids(flask_client: Any) -> None:
    """What the page uses must be allowed by its own policy: no scripts, no inline
    styles, stylesheets only from 'self', images only from allowed schemes."""
    for path in HTML_PAGES:
        _, headers, body = fetch(flask_client, path)
        directives = csp_directives(headers["content-security-policy"])
        document = lxml.html.fromstring(body)
        assert not document.xpath("//script"), path
        assert not document.xpath("//style"), path
        assert not document.xpath("//*[@style]"), path
        assert not document.xpath("//iframe|//object|//embed|//base"), path
        for form in document.xpath("//form"):  # a finder: a GET to this site, no script
            assert (form.get("method") or "get").lower() == "get", path
            action = form.get("action") or ""
            assert action.startswith("/") and not action.startswith("//"), (path, action)
            assert "'self'" in directives["form-action"]
        for element in document.iter():
            if not isinstance(element.tag, str):
                continue
            for name, value in element.attrib.items():
                assert not name.lower().startswith("on"), (path, name, value)
                if name in {"href", "src"}:
                    assert not value.strip().lower().startswith(("javascript:", "vbscript:")), (
                        path,
                        value,
                    )
        for href in document.xpath("//link[@rel='stylesheet']/@href"):
            assert href.startswith("/") and not href.startswith("//"), href
            assert "'self'" in directives["style-src"]
        for src in document.xpath("//img/@src"):
            scheme = src.split(":", 1)[0] + ":" if ":" in src else "'self'"
            assert scheme in directives.get("img-src", []) or "'self'" in directives.get(
                "img-src", []
            ), src


def test_hostile_text_reaches_the_pages_only_as_text(flask_client: Any) -> None:
    """The hostile titles are on the page (so the checks above saw them) as text."""
    _, _, body = fetch(flask_client, "/feeds/all/")
    document = lxml.html.fromstring(body)
    text = document.text_content()
    for title in ("alert(1)Hello", "alert(1) safe", "Security <script>alert(1)</script>"):
        assert title in text
    assert b"<script" not in body.lower()


def test_feeds_and_other_responses_send_nosniff(flask_client: Any, live: LiveServer) -> None:
    for source in both(flask_client, live):
        for path in FEEDS + OTHER:
            for headers in ({}, {"Accept-Encoding": "gzip"}):
                status, got, _ = fetch(source, path, headers)
                assert status < 500, (path, status)
                assert got.get("x-content-type-options") == "nosniff", (source, path, status)


def _inert_html(fragment: str, where: str) -> None:
    """An HTML fragment a reader will render: no script, handler or script link."""
    if not fragment.strip():
        return
    root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    assert not root.xpath("//script|//style|//iframe|//object|//embed"), where
    for element in root.iter():
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), (where, name)
            if name in {"href", "src"}:
                assert value.startswith(("http://", "https://")), (where, value)


def test_feed_content_is_inert(flask_client: Any) -> None:
    """Titles are plain text with nothing a reader could take for markup, and every
    HTML field of every item holds only harmless, escaped markup."""
    for path in FEEDS:
        _, _, body = fetch(flask_client, path)
        if path.endswith(".json"):
            for item in json.loads(body)["items"]:
                assert not TAG_START.search(item["title"] + item.get("summary", "")), item
                _inert_html(item["content_html"], path)
            continue
        document = etree.fromstring(body)
        entries = document.findall(".//item") + document.findall(f".//{{{ATOM}}}entry")
        assert entries, path
        for entry in entries:
            for child in entry:
                tag = etree.QName(child).localname
                text = child.text or ""
                if tag in {"title", "summary", "category"}:
                    assert not TAG_START.search(text), (path, tag, text)
                elif tag in {"description", "content"}:
                    _inert_html(text, path)
                for name in ("href", "url"):
                    if child.get(name) is not None:
                        assert child.get(name).startswith(("http://", "https://")), child.get(name)


def test_host_header_is_never_reflected(flask_client: Any, live: LiveServer) -> None:
    """Absolute URLs come from the configured base_url, so a forged Host cannot poison
    a cache with links to another site."""
    for source in both(flask_client, live):
        for path in ["/", "/feeds/all/", "/feeds/all.rss", "/feeds/all.json", "/feeds.opml"]:
            _, headers, body = fetch(
                source, path, {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
            )
            assert b"evil.example" not in body, path
            assert "evil.example" not in json.dumps(headers)


def test_secured_never_in_any_output(
    flask_client: Any, live: LiveServer, site: tuple[Path, Path], loaded: Site
) -> None:
    for source in both(flask_client, live):
        for path in FEEDS + HTML_PAGES + OTHER:
            _, headers, body = fetch(source, path)
            for text in (body.decode("utf-8", "replace"), json.dumps(headers)):
                assert "secured" not in text, path
                assert SECRET_MARK not in text, path
    seeds, config = site
    for command in (
        ["check"],
        ["check", "--format", "json"],
        ["explain", str(seeds / "text" / "script-and-img.md")],
        ["explain", "--format", "json", str(seeds / "text" / "title-100kb.md")],
    ):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "feedservice",
                *command[:1],
                "--seeds",
                str(seeds),
                "--config",
                str(config),
                *command[1:],
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
            env=os.environ.copy(),
        )
        output = result.stdout + result.stderr
        assert "Traceback" not in output, output[-2000:]
        assert SECRET_MARK not in output, command
        assert "secured" not in output, command
        if command[0] == "explain":
            assert result.returncode == 0 and "published" in output, output[-2000:]
    log = live.log()
    assert "secured" not in log and SECRET_MARK not in log
    # Nor is a secret ever written to disk: the store (and its WAL) of both.
    state_files = [p for p in Path(str(loaded.store.path)).parent.iterdir() if p.is_file()]
    state_files += [p for p in live.log_path.parent.glob(f"state-{live.port}/**/*") if p.is_file()]
    assert any(p.name.startswith("feedservice.sqlite3") for p in state_files)
    for path in state_files:
        data = path.read_bytes()
        assert SECRET_MARK.encode() not in data, path
        assert b"secured" not in data, path
