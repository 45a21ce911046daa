"""WebSub: hub and self links in every feed, and publish pings to a local hub stand-in.

The hub is a real HTTP server on a loopback port that records each POST, so the
tests see exactly what a hub would: one form-encoded `hub.mode=publish` per
feed URL of each changed feed, nothing for unchanged feeds, and a failing or
stalled hub that never disturbs reloading or serving. The publisher is a loader
listener: only the loader publishes, however many workers serve.
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
from conftest import Site, article_fields, bump_mtime, free_port, write_config, write_seed
from lxml import etree

from feedservice.runtime.websub import WebSubPublisher

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


def make_files(tmp_path: Path, hub_url: str | None) -> tuple[Path, Path]:
    """Three articles: two about Robots, one about Space; feeds all, space-only and the
    topics robots and space."""
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


def publishing_site(
    tmp_path: Path, site_factory, hub_url: str | None, timeout: float = 5
) -> tuple[Site, WebSubPublisher]:
    """A site whose loader has a publisher, as `serve`'s loader has (after its first load)."""
    seeds, config = make_files(tmp_path, hub_url)
    site = site_factory(seeds, config)
    publisher = WebSubPublisher(timeout=timeout)
    site.loader.listeners.append(publisher)
    return site, publisher


def expected_urls(*paths: str, base: str = "http://feeds.test") -> list[str]:
    return sorted(f"{base}{path}.{fmt}" for path in paths for fmt in FORMATS)


def robots(site: Site) -> int:
    return len(site.loader.catalog.feeds["topics/robots"].entries)  # type: ignore[union-attr]


def test_rel_hub_and_rel_self_in_rss_and_atom_and_json_hubs(
    tmp_path: Path, hub: Hub, site_factory
) -> None:
    client = site_factory(*make_files(tmp_path, hub.url)).client
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


def test_no_hub_link_without_websub_hub(tmp_path: Path, site_factory) -> None:
    client = site_factory(*make_files(tmp_path, None)).client
    rss = etree.fromstring(client.get("/feeds/all.rss").data)
    assert [link.get("rel") for link in rss.iter(ATOM + "link")] == ["self"]
    atom = etree.fromstring(client.get("/feeds/all.atom").data)
    assert "hub" not in [link.get("rel") for link in atom.findall(ATOM + "link")]
    assert "hubs" not in client.get("/feeds/all.json").json


def test_changed_feeds_are_those_whose_items_changed(tmp_path: Path, site_factory) -> None:
    seeds, config = make_files(tmp_path, None)
    site = site_factory(seeds, config)
    assert site.reload() is None  # the same files: no change at all
    edited = write_seed(seeds, "r1.md", **article_fields(1, topics=["Robots"], title="New title"))
    bump_mtime(edited)
    reloaded = site.reload()
    assert reloaded is not None
    assert set(reloaded.changed_feeds) == {"feeds/all", "providers/example.com", "topics/robots"}
    bump_mtime(edited)  # read again, the same content: no feed changed
    reloaded = site.reload()
    assert reloaded is not None and reloaded.changed == 1 and reloaded.changed_feeds == ()
    write_seed(seeds, "sea.md", **article_fields(4, topics=["Sea"]))
    reloaded = site.reload()
    assert reloaded is not None
    assert set(reloaded.changed_feeds) == {"feeds/all", "providers/example.com", "topics/sea"}
    (seeds / "sea.md").unlink()  # a feed that is gone changed too
    reloaded = site.reload()
    assert reloaded is not None
    assert set(reloaded.changed_feeds) == {"feeds/all", "providers/example.com", "topics/sea"}


def test_one_publish_per_url_of_each_changed_feed(tmp_path: Path, hub: Hub, site_factory) -> None:
    site, publisher = publishing_site(tmp_path, site_factory, hub.url)
    seeds = site.loader.seeds

    assert site.reload() is None  # nothing changed
    assert publisher.wait_idle(10)
    assert hub.received == []

    path = write_seed(seeds, "r1.md", **article_fields(1, topics=["Robots"], title="Edited"))
    bump_mtime(path)
    site.reload()
    assert publisher.wait_idle(10)
    assert sorted(hub.urls()) == expected_urls(
        "/feeds/all", "/providers/example.com", "/topics/robots"
    )
    assert all(form["hub.mode"] == ["publish"] for form in hub.received)
    assert all(len(form["hub.url"]) == 1 for form in hub.received)
    assert set(hub.content_types) == {"application/x-www-form-urlencoded"}

    # The same bytes again (a touch) is not a change a subscriber could see.
    bump_mtime(path)
    assert site.reload() is not None
    assert publisher.wait_idle(10)
    assert len(hub.received) == 9

    write_seed(seeds, "s4.md", **article_fields(4, topics=["Space"]))
    site.reload()
    assert publisher.wait_idle(10)
    added = expected_urls(
        "/feeds/all", "/feeds/space-only", "/providers/example.com", "/topics/space"
    )
    assert sorted(hub.urls()[9:]) == added
    assert publisher.failed == 0 and publisher.sent == 21


def test_a_hub_fetching_on_a_ping_gets_the_new_items(
    tmp_path: Path, hub: Hub, site_factory
) -> None:
    """The loader commits before it pings: a hub that fetches the feed at once already
    sees the change."""
    site, publisher = publishing_site(tmp_path, site_factory, hub.url)
    fetched: list[bytes] = []
    real_publish = publisher.publish

    def publish_then_fetch(hub_url: str, url: str) -> str | None:
        problem = real_publish(hub_url, url)
        fetched.append(site.get(url.removeprefix("http://feeds.test")).data)
        return problem

    publisher.publish = publish_then_fetch  # type: ignore[method-assign]
    write_seed(site.loader.seeds, "s5.md", **article_fields(5, topics=["Space"]))
    site.reload()
    assert publisher.wait_idle(10)
    assert len(fetched) == 12 and all(b"Article number 5" in body for body in fetched)


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
    tmp_path: Path,
    hub: Hub,
    garbled_hub: str,
    failure: str,
    caplog: pytest.LogCaptureFixture,
    site_factory,
) -> None:
    hub.status = 500
    hub_url = {
        "500": hub.url,
        "refused": f"http://127.0.0.1:{free_port()}/hub",
        "garbled": garbled_hub,
    }[failure]
    site, publisher = publishing_site(tmp_path, site_factory, hub_url, timeout=2)
    seeds = site.loader.seeds

    write_seed(seeds, "r5.md", **article_fields(5, topics=["Robots"]))
    assert site.reload() is not None
    assert publisher.wait_idle(10)
    assert publisher.failed == 9 and publisher.sent == 0
    assert "websub: 9 of 9 publishes failed" in caplog.text
    assert site.get("/topics/robots.rss").status_code == 200
    write_seed(seeds, "r6.md", **article_fields(6, topics=["Robots"]))
    assert site.reload() is not None
    assert robots(site) == 4  # reloads go on
    assert publisher.wait_idle(10)
    assert publisher.failed == 18


def test_a_hub_that_never_answers_times_out(tmp_path: Path, hub: Hub, site_factory) -> None:
    hub.release = threading.Event()  # held open until the test ends
    site, publisher = publishing_site(tmp_path, site_factory, hub.url, timeout=0.5)
    write_seed(site.loader.seeds, "r9.md", **article_fields(9, topics=["Robots"]))
    assert site.reload() is not None
    assert publisher.wait_idle(20)  # each POST gave up after its timeout
    assert publisher.failed == 9 and publisher.sent == 0


def test_stalled_hub_never_delays_a_reload(tmp_path: Path, hub: Hub, site_factory) -> None:
    hub.release = threading.Event()
    site, publisher = publishing_site(tmp_path, site_factory, hub.url, timeout=20)
    seeds = site.loader.seeds

    write_seed(seeds, "r7.md", **article_fields(7, topics=["Robots"]))
    assert site.reload() is not None
    # The hub holds the first publish open until released: reloads and serving go on.
    write_seed(seeds, "r8.md", **article_fields(8, topics=["Robots"]))
    assert site.reload() is not None
    assert robots(site) == 4
    assert site.get("/topics/robots.atom").status_code == 200
    assert not publisher.wait_idle(0.2)
    assert hub.received == []
    hub.release.set()
    assert publisher.wait_idle(20)
    assert sorted(set(hub.urls())) == expected_urls(
        "/feeds/all", "/providers/example.com", "/topics/robots"
    )


def test_starting_a_server_publishes_nothing(tmp_path: Path, hub: Hub, live_server_factory) -> None:
    """Nothing changed for a subscriber when the service starts, on an empty state
    directory or on the one it left."""
    seeds, config = make_files(tmp_path, hub.url)
    state = ("--state-dir", str(tmp_path / "state"))
    first = live_server_factory(seeds, config, workers=2, extra_args=state)
    at_first_start = hub.wait_for(10**6, timeout=3)  # all it sends in 3 s
    first.stop()
    live_server_factory(seeds, config, workers=2, extra_args=state)
    at_restart = hub.wait_for(len(at_first_start) + 1, timeout=3)[len(at_first_start) :]
    assert at_restart == []
    assert at_first_start == []


def test_live_server_with_two_workers_publishes_each_url_once(
    tmp_path: Path, hub: Hub, live_server_factory
) -> None:
    seeds, config = make_files(tmp_path, hub.url)
    server = live_server_factory(seeds, config, workers=2)
    base = server.url
    rss = etree.fromstring(server.get("/topics/robots.rss")[2])
    assert {link.get("rel") for link in rss.iter(ATOM + "link")} == {"self", "hub"}
    before = len(hub.wait_for(10**6, timeout=3))  # (what starting up sent: see the test above)

    write_seed(seeds, "s9.md", **article_fields(9, topics=["Space"]))
    received = hub.wait_for(before + 12, timeout=30)[before:]
    assert sorted(received) == expected_urls(
        "/feeds/all", "/feeds/space-only", "/providers/example.com", "/topics/space", base=base
    )
    time.sleep(3)  # several reloads later: nothing is published twice
    assert len(hub.urls()) == before + 12
    status, _, body = server.get("/topics/space.json")
    assert status == 200 and b"Article number 9" in body
