"""`feedservice serve`: workers inherit the snapshot the parent loaded before forking;
a worker granian respawns later loads the seeds itself and serves the same bytes."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from conftest import article_fields, wait_for, write_seed


def test_a_respawned_worker_loads_itself_and_serves_identical_bytes(
    seeds: Path, config_file: Path, live_server_factory
) -> None:
    for n in range(20):
        write_seed(seeds, f"{n:02d}.md", **article_fields(n))
    server = live_server_factory(seeds, config_file, workers=2, wait_articles=20)
    pids: set[int] = set()
    wait_for(lambda: pids.add(server.health()["pid"]) or len(pids) == 2, "both workers")
    before = {server.get("/feeds/all.rss")[1]["ETag"] for _ in range(10)}
    assert len(before) == 1
    victim = sorted(pids)[0]
    os.kill(victim, signal.SIGKILL)
    seen: set[int] = set()

    def respawned() -> bool:
        try:
            health = server.health()
        except OSError:  # a connection the killed worker held
            return False
        seen.add(health["pid"])
        return health["articles"] == 20 and bool(seen - pids)

    wait_for(respawned, "a respawned worker serving every article", timeout=30)
    after = {server.get("/feeds/all.rss")[1]["ETag"] for _ in range(20)}
    assert after == before
    assert "Traceback" not in server.log()
