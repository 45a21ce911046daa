"""A bad config never takes the service down.

At startup, `feedservice serve` with an invalid config exits with status 2 and a
message naming the offending key, before any worker starts. At reload, an invalid
config is ignored: the last good one stays in force, feeds keep being served, and
/healthz reports the problem until the file is fixed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, article_fields, free_port, start_server, write_config, write_seed

pytestmark = pytest.mark.timeout(120)

INVALID = {
    "reload_interval: soon\n": "reload_interval",
    "reload_interval: 0\n": "reload_interval",
    "reload_interval: 2021-13-45\n": "reload_interval",  # a broken date must not crash
    "topic_limit: " + "9" * 5000 + "\n": "topic_limit",
    "base_url: ftp://x\n": "base_url",
    "language: 'en gb'\n": "language",
    "colour: blue\n": "colour",
    "feeds:\n  - name: ok\n    title: OK\n    topics: [AI]\n    limit: 0\n": "feeds[0].limit",
    "feeds:\n  - name: Bad Name\n    title: x\n    topics: [AI]\n": "feeds[0].name",
    "feeds:\n  - name: x\n    title: x\n": "feeds[0].topics",
    "feeds: {a: 1}\n": "feeds",
    "title: [unclosed\n": "(yaml)",
    "feeds: " + "[" * 100_000 + "\n": "(yaml)",  # libyaml would crash on this depth
    "feeds:\n  " + "- " * 100_000 + "x\n": "(yaml)",
    "just a string\n": "(top level)",
}


def serve(
    seeds: Path, config: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "feedservice",
            "serve",
            "--seeds",
            str(seeds),
            "--config",
            str(config),
            "--port",
            str(free_port()),
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
        env={**os.environ, "FEEDSERVICE_CACHE_DIR": "off", **(env or {})},
    )


@pytest.mark.parametrize("text", sorted(INVALID), ids=lambda text: text[:30])
def test_invalid_config_at_startup_exits_2_naming_the_key(tmp_path: Path, text: str) -> None:
    seeds = tmp_path / "seeds"
    write_seed(seeds, "a.md", **article_fields(1))
    config = tmp_path / "feeds.yaml"
    config.write_text(text, encoding="utf-8")
    result = serve(seeds, config)
    assert result.returncode == 2, result.stderr[-2000:]
    assert INVALID[text] in result.stderr, result.stderr
    assert str(config) in result.stderr
    assert "Traceback" not in result.stderr


def test_non_utf8_config_and_bad_environment_exit_2(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    write_seed(seeds, "a.md", **article_fields(1))
    config = tmp_path / "feeds.yaml"
    config.write_bytes(b"title: caf\xe9\n")
    result = serve(seeds, config)
    assert result.returncode == 2 and "(file)" in result.stderr and "UTF-8" in result.stderr
    config = write_config(tmp_path / "good.yaml", title="Good")
    result = serve(seeds, config, {"FEEDSERVICE_TOPIC_LIMIT": "many"})
    assert result.returncode == 2 and "topic_limit" in result.stderr, result.stderr


def _poll(server: Any, predicate: Any, timeout: float = 20) -> dict[str, Any]:
    """Wait until `predicate(health)` holds on several answers in a row (every worker)."""
    deadline = time.monotonic() + timeout
    streak, health = 0, {}
    while streak < 8:
        assert time.monotonic() < deadline, health
        health = server.health()
        streak = streak + 1 if predicate(health) else 0
        time.sleep(0.05 if streak else 0.2)
    return health


def test_invalid_config_at_reload_keeps_the_last_good_one(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    for n in range(3):
        write_seed(seeds, f"a{n}.md", **article_fields(n))
    config = write_config(
        tmp_path / "feeds.yaml", title="Good title", reload_interval=1, topic_limit=2
    )
    server = start_server(
        seeds, config, tmp_path, workers=2, env={"FEEDSERVICE_CACHE_DIR": "off"}, wait_articles=3
    )
    try:
        good = server.get("/feeds/all.json")
        assert json.loads(good[2])["title"] == "All articles"
        for text, key in [
            ("title: Bad\ntopic_limit: -5\nreload_interval: 1\n", "topic_limit"),
            ("title: Bad\nfeeds: " + "[" * 100_000 + "\n", "(yaml)"),
            ("title: Bad\nreload_interval: 2021-13-45\n", "reload_interval"),
        ]:
            config.write_text(text, encoding="utf-8")
            health = _poll(server, lambda h, key=key: key in (h.get("config_error") or ""))
            assert health["status"] != "ok"
            assert str(config) in health["config_error"]
            assert health["articles"] == 3
            status, _, body = server.get("/topics/ai.json")
            assert status == 200
            assert len(json.loads(body)["items"]) == 2  # still the good topic_limit
            assert "Good title" in server.get("/")[2].decode()
            assert server.process.poll() is None
        write_config(config, title="Fixed title", reload_interval=1, topic_limit=3)
        health = _poll(server, lambda h: h.get("config_error") is None)
        assert health["status"] == "ok"
        _poll(server, lambda h: True)
        assert len(json.loads(server.get("/topics/ai.json")[2])["items"]) == 3
        assert "Fixed title" in server.get("/")[2].decode()
    finally:
        server.stop()
    log = server.log()
    assert "Traceback" not in log
    assert "topic_limit" in log  # the operator is told, once, in the log too
