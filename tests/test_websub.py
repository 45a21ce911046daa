"""WebSub: hub and self links in every feed, and publish pings to a local hub stand-in.

The hub is a real HTTP server on a loopback port that records each POST, so the
tests see exactly what a hub would: one form-encoded `hub.mode=publish` per
feed URL of each changed feed, nothing for unchanged feeds, and a failing or
stalled hub that never disturbs reloading or serving.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import feedparser
import pytest
from conftest import article_fields, bump_mtime, free_port, seed_text, write_config, write_seed
from lxml import etree

from feedservice.articles import Article, parse_seed
from feedservice.catalog import build_catalog
from feedservice.config import parse_config
from feedservice.service import Service
from feedservice.web import create_app
from feedservice.websub import WebSubPublisher, changed_feeds

ATOM = "{http://www.w3.org/2005/Atom}"
FORMATS = ("rss", "atom", "json")


@dataclass
class Hub:
    """A hub stand-in: records publishes; answers `status`, or waits for `release`."""

    status: int = 204
    release: threading.Event | None = None
    received: list[dict[str, list[str]]] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    url: str = ""

    def urls(self) -> list[str]:
        with self.arrived:
            return [url for form in self.received for url in form.get("hub.url", [])]

    def wait_for(self, count: int, timeout: float = 20) -> list[str]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.received) < count and time.monotonic() < deadline:
                self.arrived.wait(0.1)
        return self.urls()


@pytest.fixture
def hub() -> Iterator[Hub]:
    state = Hub()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = urllib.parse.parse_qs(self.rfile.read(length).decode())
            if state.release is not None:
                state.release.wait(30)
            with state.arrived:
                state.received.append(form)
                state.content_types.append(self.headers.get("Content-Type", ""))
                state.arrived.notify_all()
            self.send_response(state.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hub"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    if state.release is not None:
        state.release.set()
    server.shutdown()
    server.server_close()


def make_site(tmp_path: Path, hub_url: str | None) -> tuple[Path, Path]:
    """Three articles: two about Robots, one about Space; feeds all, robots, space."""
    seeds = tmp_path / "seeds"
    write_seed(seeds, "r1.md", **article_fields(1, topics=["Robots"]))
    write_seed(seeds, "r2.md", **article_fields(2, topics=["Robots"]))
    write_seed(seeds, "s3.md", **article_fields(3, topics=["Space"]))
    config = write_config(
        tmp_path / "feeds.yaml",
        title="Hub test",
        base_url="http://feeds.test",
        reload_interval=1,
        websub_hub=hub_url,
        feeds=[{"name": "space-only", "title": "Space", "topics": ["Space"]}],
    )
    return seeds, config


def expected_urls(*paths: str) -> list[str]:
    return sorted(f"http://feeds.test{path}.{fmt}" for path in paths for fmt in FORMATS)


def test_rel_hub_and_rel_self_in_rss_and_atom_and_json_hubs(tmp_path: Path, hub: Hub) -> None:
    seeds, config = make_site(tmp_path, hub.url)
    client = create_app(Service(seeds, config)).test_client()
    for path in ("/feeds/all", "/topics/robots"):
        rss = etree.fromstring(client.get(path + ".rss").data)
        links = {link.get("rel"): link.get("href") for link in rss.iter(ATOM + "link")}
        assert links == {"self": f"http://feeds.test{path}.rss", "hub": hub.url}
        atom = etree.fromstring(client.get(path + ".atom").data)
        links = {link.get("rel"): link.get("href") for link in atom.findall(ATOM + "link")}
        assert links["self"] == f"http://feeds.test{path}.atom"
        assert links["hub"] == hub.url
        parsed = feedparser.parse(client.get(path + ".atom").data)
        assert parsed.bozo == 0
        assert {link.rel for link in parsed.feed.links} >= {"self", "hub"}
        assert client.get(path + ".json").json["hubs"] == [{"type": "WebSub", "url": hub.url}]


def test_no_hub_link_without_websub_hub(tmp_path: Path) -> None:
    seeds, config = make_site(tmp_path, None)
    client = create_app(Service(seeds, config)).test_client()
    rss = etree.fromstring(client.get("/feeds/all.rss").data)
    assert [link.get("rel") for link in rss.iter(ATOM + "link")] == ["self"]
    atom = etree.fromstring(client.get("/feeds/all.atom").data)
    assert "hub" not in [link.get("rel") for link in atom.findall(ATOM + "link")]
    assert "hubs" not in client.get("/feeds/all.json").json


def test_changed_feeds_are_those_whose_items_changed(tmp_path: Path) -> None:
    def article(n: int, **overrides: object) -> Article:
        text = seed_text(**article_fields(n, **overrides)).encode()
        return parse_seed(text, f"{n}.md").article

    config = parse_config({"base_url": "http://feeds.test"})
    before = build_catalog([article(1, topics=["Robots"]), article(2, topics=["Space"])], config)
    same = build_catalog([article(1, topics=["Robots"]), article(2, topics=["Space"])], config)
    assert changed_feeds(before, same) == []
    edited = build_catalog(
        [article(1, topics=["Robots"], title="New title"), article(2, topics=["Space"])], config
    )
    assert {feed.path for feed in changed_feeds(before, edited)} == {"/feeds/all", "/topics/robots"}
    added = build_catalog(
        [article(1, topics=["Robots"]), article(2, topics=["Space"]), article(3, topics=["Sea"])],
        config,
    )
    assert {feed.path for feed in changed_feeds(before, added)} == {"/feeds/all", "/topics/sea"}


def test_one_publish_per_url_of_each_changed_feed(tmp_path: Path, hub: Hub) -> None:
    seeds, config = make_site(tmp_path, hub.url)
    service = Service(seeds, config)
    publisher = WebSubPublisher(timeout=5)
    service.listeners.append(publisher)

    service.reload()  # nothing changed
    assert publisher.wait_idle(10)
    assert hub.received == []

    path = write_seed(seeds, "r1.md", **article_fields(1, topics=["Robots"], title="Edited"))
    bump_mtime(path)
    service.reload()
    assert publisher.wait_idle(10)
    assert sorted(hub.urls()) == expected_urls("/feeds/all", "/topics/robots")
    assert all(form["hub.mode"] == ["publish"] for form in hub.received)
    assert all(len(form["hub.url"]) == 1 for form in hub.received)
    assert set(hub.content_types) == {"application/x-www-form-urlencoded"}

    # The same bytes again (a touch) is not a change a subscriber could see.
    bump_mtime(path)
    service.reload()
    assert publisher.wait_idle(10)
    assert len(hub.received) == 6

    write_seed(seeds, "s4.md", **article_fields(4, topics=["Space"]))
    service.reload()
    assert publisher.wait_idle(10)
    added = expected_urls("/feeds/all", "/feeds/space-only", "/topics/space")
    assert sorted(hub.urls()[6:]) == added
    assert publisher.failed == 0 and publisher.sent == 15


@pytest.fixture
def garbled_hub() -> Iterator[str]:
    """A 'hub' that answers every connection with bytes that are not HTTP."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.recv(65536)
                connection.sendall(b"NOT HTTP AT ALL\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/hub"
    stop.set()
    thread.join()
    listener.close()


@pytest.mark.parametrize("failure", ["500", "refused", "garbled"])
def test_failing_hub_is_harmless(
    tmp_path: Path, hub: Hub, garbled_hub: str, failure: str, caplog: pytest.LogCaptureFixture
) -> None:
    hub.status = 500
    hub_url = {
        "500": hub.url,
        "refused": f"http://127.0.0.1:{free_port()}/hub",
        "garbled": garbled_hub,
    }[failure]
    seeds, config = make_site(tmp_path, hub_url)
    service = Service(seeds, config)
    publisher = WebSubPublisher(timeout=2)
    service.listeners.append(publisher)
    client = create_app(service).test_client()

    write_seed(seeds, "r5.md", **article_fields(5, topics=["Robots"]))
    service.reload()
    assert publisher.wait_idle(10)
    assert publisher.failed == 6 and publisher.sent == 0
    assert "websub: 6 of 6 publishes to the hub failed" in caplog.text
    assert client.get("/topics/robots.rss").status_code == 200
    write_seed(seeds, "r6.md", **article_fields(6, topics=["Robots"]))
    snapshot = service.reload()
    assert len(snapshot.catalog.feed("topics", "robots").items) == 4  # reloads go on
    assert publisher.wait_idle(10)


def test_stalled_hub_never_delays_a_reload(tmp_path: Path, hub: Hub) -> None:
    hub.release = threading.Event()
    seeds, config = make_site(tmp_path, hub.url)
    service = Service(seeds, config)
    publisher = WebSubPublisher(timeout=20)
    service.listeners.append(publisher)
    client = create_app(service).test_client()

    write_seed(seeds, "r7.md", **article_fields(7, topics=["Robots"]))
    service.reload()
    # The hub holds the first publish open until released: reload and serving go on.
    write_seed(seeds, "r8.md", **article_fields(8, topics=["Robots"]))
    assert len(service.reload().catalog.feed("topics", "robots").items) == 4
    assert client.get("/topics/robots.atom").status_code == 200
    assert hub.received == []
    hub.release.set()
    assert publisher.wait_idle(20)
    assert sorted(set(hub.urls())) == expected_urls("/feeds/all", "/topics/robots")


def test_live_server_with_two_workers_publishes_each_url_once(
    tmp_path: Path, hub: Hub, live_server_factory
) -> None:
    seeds, config = make_site(tmp_path, hub.url)
    server = live_server_factory(seeds, config, workers=2)
    base = server.url

    def urls(*paths: str) -> list[str]:
        return sorted(f"{base}{path}.{fmt}" for path in paths for fmt in FORMATS)

    assert hub.wait_for(1, timeout=3) == []  # starting up is not a change
    rss = etree.fromstring(server.get("/topics/robots.rss")[2])
    assert {link.get("rel") for link in rss.iter(ATOM + "link")} == {"self", "hub"}

    write_seed(seeds, "s9.md", **article_fields(9, topics=["Space"]))
    received = hub.wait_for(9, timeout=30)
    assert sorted(received) == urls("/feeds/all", "/feeds/space-only", "/topics/space")
    time.sleep(3)  # both workers have reloaded by now; the second must not publish again
    assert len(hub.urls()) == 9
    status, _, body = server.get("/topics/space.json")
    assert status == 200 and b"Article number 9" in body
