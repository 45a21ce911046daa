"""One loader, one shared state: every worker serves the same persistent generation.

Each test runs the real `feedservice serve` (a loader process and granian workers) on a
loopback port. Requests go over new connections, which the kernel spreads over the
workers (SO_REUSEPORT), so asking each URL many times asks every worker.
"""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import (
    REPO,
    LiveServer,
    article_fields,
    free_port,
    start_server,
    wait_for,
    write_config,
    write_seed,
)
from lxml import etree

from feedservice.http import urls

pytestmark = pytest.mark.timeout(240)
ASKS = 12  # requests per URL: with 2 workers, a worker is missed with odds 1 in 2,000


def every_url(server: LiveServer) -> list[str]:
    """Every URL the service answers, from the index's feeds (the grammar's builders)."""
    found = [
        "/",
        "/feeds.opml",
        "/feeds.opml?format=rss",
        "/topics.opml",
        "/topics.opml?format=rss",
    ]
    opml = etree.fromstring(server.get("/feeds.opml")[2])
    for outline in opml.iter("outline"):
        url = outline.get("xmlUrl")
        if url:
            route = urls.parse(urlsplit(url).path)
            assert route is not None
            found.append(urls.page_path(route.kind, route.name))
            found += [urls.feed_path(route.kind, route.name, fmt) for fmt in urls.FORMATS]
            found += [urls.feed_path(route.kind, route.name, fmt, 2) for fmt in urls.FORMATS]
    return found


def answers(server: LiveServer, url: str) -> set[tuple[int, str, bytes]]:
    """The distinct (status, ETag, body) answers of ASKS requests for one URL."""
    found = set()
    for _ in range(ASKS):
        status, headers, body = server.get(url)
        found.add((status, headers.get("ETag", ""), body))
    return found


def snapshot(server: LiveServer) -> dict[str, tuple[int, str, str, bytes]]:
    """Every URL's answer; fails if two workers answer one URL differently."""
    result = {}
    for url in every_url(server):
        distinct = answers(server, url)
        assert len(distinct) == 1, f"workers disagree on {url}: {[a[:2] for a in distinct]}"
        status, etag, body = distinct.pop()
        modified = server.get(url)[1].get("Last-Modified", "")
        result[url] = (status, etag, modified, body)
    return result


def generation(server: LiveServer) -> int:
    return int(server.health()["generation"])


def wait_generation_after(server: LiveServer, before: int) -> None:
    wait_for(lambda: generation(server) > before, "a new generation", timeout=10)


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Path]:
    seeds = tmp_path / "seeds"
    for n in range(12):
        topics = ["AI", "Robots"] if n % 3 else ["AI"]
        write_seed(seeds, f"{n:02d}.md", **article_fields(n, topics=topics))
    config = write_config(
        tmp_path / "feeds.yaml",
        reload_interval=1,
        topic_limit=5,
        feeds=[{"name": "robots", "title": "Robots", "topics": ["Robots"], "limit": 4}],
    )
    return seeds, config


def test_workers_agree_after_every_kind_of_change(site, live_server_factory) -> None:
    seeds, config = site
    server = live_server_factory(seeds, config, workers=2, wait_articles=12)
    pids: set[int] = set()
    wait_for(lambda: pids.add(server.health()["pid"]) or len(pids) == 2, "both workers")
    snapshot(server)

    before = generation(server)
    write_seed(seeds, "11.md", **article_fields(11, title="Edited title", topics=["AI"]))
    wait_generation_after(server, before)
    edited = snapshot(server)
    assert b"Edited title" in edited["/feeds/all.rss"][3]

    before = generation(server)
    (seeds / "10.md").write_text("---\ntitle: [unclosed\n---\n", encoding="utf-8")
    wait_generation_after(server, before)
    bad = snapshot(server)
    assert b"Article number 10" in bad["/feeds/all.rss"][3]  # its last good version
    assert server.health()["seed_errors"]["count"] == 1

    before = generation(server)
    (seeds / "09.md").unlink()
    wait_generation_after(server, before)
    deleted = snapshot(server)
    assert b"Article number 9<" not in deleted["/feeds/all.rss"][3]

    victim = sorted(pids)[0]
    os.kill(victim, signal.SIGKILL)
    seen: set[int] = set()

    def respawned() -> bool:
        try:
            seen.add(server.health()["pid"])
        except OSError:
            return False
        return bool(seen - pids) and len(seen) >= 2

    wait_for(respawned, "a respawned worker", timeout=30)
    assert snapshot(server) == deleted  # the new worker answers as the others did


def test_a_restart_after_kill_9_answers_byte_for_byte_as_before(site, tmp_path: Path) -> None:
    seeds, config = site
    port = free_port()
    state = tmp_path / "state"
    args = ("--state-dir", str(state))
    server = start_server(seeds, config, tmp_path, workers=2, port=port, extra_args=args)
    try:
        before = generation(server)
        (seeds / "11.md").write_text("---\ntitle: broken: [\n---\n", encoding="utf-8")
        wait_generation_after(server, before)
        first = snapshot(server)
        assert b"Article number 11" in first["/feeds/all.rss"][3]  # the last good version
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()
        wait_for(lambda: not _group_alive(server.process.pid), "the whole service gone", 5)
    finally:
        server.stop()
    again = start_server(seeds, config, tmp_path, workers=2, port=port, extra_args=args)
    try:
        assert snapshot(again) == first  # last good versions included
    finally:
        again.stop()


def test_one_reload_line_and_one_publish_per_change_with_four_workers(site, tmp_path) -> None:
    seeds, config = site
    hub = _Hub()
    write_config(config, reload_interval=1, websub_hub=hub.url, topic_limit=5)
    server = start_server(seeds, config, tmp_path, workers=4, wait_articles=12)
    try:
        hub.wait_quiet()
        hub.pings.clear()
        before = generation(server)
        write_seed(seeds, "new.md", **article_fields(50, topics=["Space"]))
        wait_generation_after(server, before)
        base = server.url
        expected = {
            f"{base}{urls.feed_path(kind, name, fmt)}"
            for kind, name in (("feeds", "all"), ("topics", "space"))
            for fmt in urls.FORMATS
        }
        wait_for(lambda: len(hub.pings) >= len(expected), "the hub's pings", timeout=10)
        time.sleep(2)  # time for any duplicate ping to arrive
        assert expected <= set(hub.pings)
        assert len(hub.pings) == len(set(hub.pings))  # one publish per URL, not one per worker
        topic = {url for url in hub.pings if "/topics/" in url}
        assert topic == {u for u in expected if "/topics/" in u}  # unchanged topics: no ping
        generations = generation(server)
        lines = [line for line in server.log().splitlines() if "reload: +" in line]
        assert len(lines) == generations  # one line per committed reload, not one per worker
        assert "election" not in server.log() and "reporter" not in server.log()
    finally:
        server.stop()
        hub.close()


def test_kill_9_of_the_parent_leaves_nothing_running(site, tmp_path: Path) -> None:
    seeds, config = site
    server = start_server(seeds, config, tmp_path, workers=2)
    group = server.process.pid
    assert len(_group_members(group)) >= 4  # parent, loader, two workers
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()
    started = time.monotonic()
    wait_for(lambda: not _group_alive(group), "every process of the service to end", 3)
    assert time.monotonic() - started < 3
    with pytest.raises(OSError):
        server.get("/healthz")
    server.stop()


def test_a_second_serve_on_a_port_in_use_exits_2(site, live_server_factory, tmp_path) -> None:
    seeds, config = site
    server = live_server_factory(seeds, config, workers=1)
    result = subprocess.run(
        [sys.executable, "-m", "feedservice", "serve", "--seeds", str(seeds), "--config",
         str(config), "--port", str(server.port), "--state-dir", str(tmp_path / "other")],
        capture_output=True, text=True, cwd=REPO, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert f"address 127.0.0.1:{server.port} is already in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert server.health()["status"] == "ok"  # the first one is untouched


def test_a_second_serve_on_the_same_state_dir_exits_2(site, tmp_path) -> None:
    seeds, config = site
    state = tmp_path / "shared-state"
    server = start_server(seeds, config, tmp_path, extra_args=("--state-dir", str(state)))
    try:
        result = subprocess.run(
            [sys.executable, "-m", "feedservice", "serve", "--seeds", str(seeds), "--config",
             str(config), "--port", str(free_port()), "--state-dir", str(state)],
            capture_output=True, text=True, cwd=REPO, timeout=30,
        )  # fmt: skip
        assert result.returncode == 2
        assert "is in use by another feedservice" in result.stderr
    finally:
        server.stop()


def _group_members(group: int) -> list[int]:
    found = subprocess.run(["pgrep", "-g", str(group)], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def _group_alive(group: int) -> bool:
    return bool(_group_members(group))


class _Hub:
    """A WebSub hub on loopback that records every `hub.url` it is sent."""

    def __init__(self) -> None:
        pings: list[str] = []
        self.pings = pings
        self.last = time.monotonic()
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                from urllib.parse import parse_qs

                length = int(self.headers.get("Content-Length", 0))
                form = parse_qs(self.rfile.read(length).decode())
                pings.extend(form.get("hub.url", []))
                hub.last = time.monotonic()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_quiet(self, seconds: float = 1.5) -> None:
        """Until no ping has come for `seconds` (the first load's pings are done)."""
        wait_for(lambda: time.monotonic() - self.last > seconds, "a quiet hub", timeout=20)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
