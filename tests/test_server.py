"""`feedservice serve`: granian workers hold nothing of their own; each answers from the
store's newest generation. A worker granian respawns after a kill -9 therefore serves
byte-identical answers (same ETags) at once, with no load of its own."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from conftest import LiveServer, article_fields, wait_for, write_config, write_seed

PATHS = (
    "/feeds/all.rss",
    "/feeds/all.atom?page=2",
    "/topics/ai.json",
    "/topics/ai.json?page=3",
    "/topics/ai/",
    "/feeds.opml",
    "/",
)


def answers(server: LiveServer) -> dict[str, tuple[int, str, str, bytes]]:
    result = {}
    for path in PATHS:
        status, headers, body = server.get(path)
        result[path] = (status, headers.get("ETag", ""), headers.get("Last-Modified", ""), body)
    return result


def live_pids(server: LiveServer, calls: int = 40) -> set[int]:
    """The worker pids that answered `calls` health checks."""
    pids: set[int] = set()
    for _ in range(calls):
        with contextlib.suppress(OSError, ValueError):  # a connection the killed worker held
            pids.add(server.health()["pid"])
    return pids


def test_respawned_workers_serve_identical_bytes_from_the_store(
    seeds: Path, tmp_path: Path, live_server_factory
) -> None:
    config = write_config(tmp_path / "feeds.yaml", title="Workers", reload_interval=1,
                          topic_limit=5)  # fmt: skip
    for n in range(20):
        write_seed(seeds, f"{n:02d}.md", **article_fields(n))
    server = live_server_factory(seeds, config, workers=2, wait_articles=20)
    originals: set[int] = set()
    wait_for(lambda: originals.update(live_pids(server, 5)) or len(originals) == 2, "both workers")
    generation = server.health()["generation"]
    before = answers(server)
    assert all(answer[0] == 200 for answer in before.values()), before
    assert {server.get("/feeds/all.rss")[1]["ETag"] for _ in range(10)} == {
        before["/feeds/all.rss"][1]
    }
    # Kill both original workers, one after the other, so that every answer after
    # this comes from a worker granian started later.
    killed: set[int] = set()
    for victim in sorted(originals):
        os.kill(victim, signal.SIGKILL)
        killed.add(victim)

        def replaced() -> bool:
            pids = live_pids(server, 20)
            return len(pids) == 2 and not pids & killed

        wait_for(replaced, f"a worker in place of {victim}", 30)
    assert not live_pids(server) & originals
    health = server.health()
    assert (health["generation"], health["articles"]) == (generation, 20)  # no reload
    assert answers(server) == before  # status, ETag, Last-Modified and bytes
    etag = before["/feeds/all.rss"][1]
    assert server.get("/feeds/all.rss", {"If-None-Match": etag})[0] == 304
    assert server.process.poll() is None
    assert "Traceback" not in server.log()
