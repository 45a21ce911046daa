"""/metrics: Prometheus text through the Flask client, and a churn run on a real
two-worker server whose counters must agree with what the test did."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import (
    LiveServer,
    article_fields,
    seed_text,
    wait_for,
    write_config,
    write_seed,
)
from prometheus_client.parser import text_string_to_metric_families

from feedservice import metrics
from feedservice.service import Service
from feedservice.web import create_app

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape, keyed by (name, labels); fails on malformed text."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests_by_labels(samples: Samples) -> dict[tuple[str, str, str], float]:
    found = {}
    for (name, labels), count in samples.items():
        if name == "feedservice_requests_total":
            found[(dict(labels)["route"], dict(labels)["format"], dict(labels)["status"])] = count
    return found


def delta(after: dict, before: dict) -> dict:
    return {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key)}


def atomic_write(path: Path, text: str) -> None:
    """Write as editors and git do: a hidden temp file renamed into place."""
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


# --- in-process, through the Flask test client -------------------------------------------


def test_metrics_endpoint_counts_flask_requests(seeds: Path, config_file: Path) -> None:
    write_seed(seeds, "a.md", **article_fields(1, topics=["AI"]))
    write_seed(seeds, "b.md", **article_fields(2, topics=["AI", "Robots"]))
    client = create_app(Service(seeds, config_file)).test_client()
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.headers["Cache-Control"] == "no-store"
    before = requests_by_labels(parse(response.get_data(as_text=True)))

    etag = client.get("/topics/ai.atom").headers["ETag"]
    client.get("/topics/ai.atom", headers={"If-None-Match": etag})
    client.get("/feeds/ml.json")
    client.get("/topics/ai/")
    client.get("/topics/ai.rss?page=x")  # 400
    client.get("/no/such/thing/at/all")  # 404, unmatched: never a raw path as a label
    client.get("/topics/nope.rss")  # 404
    client.get("/feeds.opml")
    after = parse(client.get("/metrics").get_data(as_text=True))

    assert delta(requests_by_labels(after), before) == {
        ("/topics/<name>", "atom", "200"): 1,
        ("/topics/<name>", "atom", "304"): 1,
        ("/feeds/<name>", "json", "200"): 1,
        ("/topics/<name>/", "html", "200"): 1,
        ("/topics/<name>", "rss", "400"): 1,
        ("unmatched", "other", "404"): 1,
        ("/topics/<name>", "rss", "404"): 1,
        ("/feeds.opml", "opml", "200"): 1,
        ("/metrics", "text", "200"): 1,  # the first scrape
    }
    assert not any("/no/such" in route for route, _, _ in requests_by_labels(after))
    # Gauges follow the service just built (this process has one registry).
    assert value(after, "feedservice_articles") == 2
    assert value(after, "feedservice_topics") == 2
    assert value(after, "feedservice_feeds") == 4  # all, ml, ai, robots


def test_renders_are_counted_and_timed(seeds: Path, config_file: Path) -> None:
    write_seed(seeds, "a.md", **article_fields(1, topics=["AI"]))
    service = Service(seeds, config_file)
    client = create_app(service).test_client()
    before = parse(client.get("/metrics").get_data(as_text=True))
    write_seed(seeds, "b.md", **article_fields(2, topics=["Robots"]))
    service.reload()
    after = parse(client.get("/metrics").get_data(as_text=True))
    rendered = service.snapshot.documents.renders
    assert rendered > 0
    for name in ("feedservice_renders_total", "feedservice_render_duration_seconds_count"):
        assert value(after, name) - value(before, name) == rendered
    assert value(after, "feedservice_render_duration_seconds_sum") > value(
        before, "feedservice_render_duration_seconds_sum"
    )


def test_reload_metrics_follow_changes(seeds: Path, config_file: Path) -> None:
    write_seed(seeds, "a.md", **article_fields(1))
    write_seed(seeds, "b.md", **article_fields(2))
    service = Service(seeds, config_file)
    client = create_app(service).test_client()
    create_app(service)  # a second app on the same service must not count twice
    before = parse(client.get("/metrics").get_data(as_text=True))
    write_seed(seeds, "c.md", **article_fields(3))
    atomic_write(seeds / "a.md", seed_text(**article_fields(1, title="Edited")))
    (seeds / "b.md").unlink()
    (seeds / "bad.md").write_text("---\ntitle: [unclosed\n---\n", encoding="utf-8")
    service.reload()
    after = parse(client.get("/metrics").get_data(as_text=True))
    changes = {
        change: value(after, "feedservice_reload_files_total", change=change)
        - value(before, "feedservice_reload_files_total", change=change)
        for change in metrics.CHANGES
    }
    assert changes == {"added": 2, "changed": 1, "removed": 1}
    assert (
        value(after, "feedservice_reload_duration_seconds_count")
        - value(before, "feedservice_reload_duration_seconds_count")
        == 1
    )
    assert value(after, "feedservice_seed_errors", kind="yaml") == 1
    assert value(after, "feedservice_seed_files") == 3
    assert value(after, "feedservice_articles") == 2


@pytest.mark.parametrize(
    ("field", "kind"),
    [
        ("(yaml)", "yaml"),
        ("(front matter)", "front_matter"),
        ("title", "field"),
        ("(x y)", "other"),
    ],
)
def test_error_kinds_are_bounded(field: str, kind: str) -> None:
    assert metrics.error_kind(field) == kind


# --- a real server with two workers ------------------------------------------------------


def scrape(server: LiveServer) -> Samples:
    status, _headers, body = server.get("/metrics")
    assert status == 200, body
    return parse(body.decode("utf-8"))


def worker_pids(server: LiveServer, want: int = 2) -> set[int]:
    """Distinct worker pids seen through /healthz (each call is one counted request)."""
    pids: set[int] = set()
    calls = 0
    while len(pids) < want and calls < 200:
        pids.add(server.health()["pid"])
        calls += 1
    assert len(pids) == want, f"saw only workers {pids}"
    return pids


def seen_pids(server: LiveServer, calls: int = 30) -> set[int]:
    pids = set()
    for _ in range(calls):
        with contextlib.suppress(OSError, ValueError):  # a connection the dead worker held
            pids.add(server.health()["pid"])
    return pids


def feed_requests(counts: dict[tuple[str, str, str], float]) -> dict:
    """Request counts without the monitoring routes the test itself keeps calling."""
    return {key: n for key, n in counts.items() if key[0] not in {"/healthz", "/metrics"}}


def reporter_pid(metrics_dir: Path) -> int:
    """The worker holding the reporter flock, read from /proc/locks."""
    inode = (metrics_dir / metrics.LOCK_NAME).stat().st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "FLOCK" in fields and fields[5].endswith(f":{inode}"):
            return int(fields[4])
    raise AssertionError("no worker holds the reporter lock")


def file_counts(samples: Samples) -> dict[str, float]:
    return {c: value(samples, "feedservice_reload_files_total", change=c) for c in metrics.CHANGES}


def test_churn_counters_agree_across_workers(
    tmp_path: Path, seeds: Path, live_server_factory: Callable[..., LiveServer]
) -> None:
    config = write_config(tmp_path / "feeds.yaml", title="Churn", reload_interval=1)
    for n in range(10):
        write_seed(seeds, f"a{n}.md", **article_fields(n, topics=["AI"]))
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_4242.db").write_bytes(b"stale file of an earlier run")
    server = live_server_factory(
        seeds, config, workers=2, env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    )
    assert not (metrics_dir / "counter_4242.db").exists()  # cleaned on start
    pids = worker_pids(server)
    start = scrape(server)
    assert value(start, "feedservice_articles") == 10
    assert value(start, "feedservice_seed_files") == 10
    assert file_counts(start) == {"added": 0, "changed": 0, "removed": 0}  # initial load

    # Known churn: +4 files (one of them bad), ~3 changed, -2 removed.
    for n in range(10, 13):
        atomic_write(seeds / f"a{n}.md", seed_text(**article_fields(n, topics=["AI"])))
    atomic_write(seeds / "bad.md", "---\ntitle: [unclosed\n---\n")
    for n in range(3):
        atomic_write(seeds / f"a{n}.md", seed_text(**article_fields(n, title=f"Edited {n}")))
    for n in (8, 9):
        (seeds / f"a{n}.md").unlink()
    expected = {"added": 4, "changed": 3, "removed": 2}
    wait_for(lambda: file_counts(scrape(server)) == expected, f"file counters {expected}")
    # Both workers have reloaded by now, so the articles agree everywhere.
    wait_for(lambda: {server.health()["articles"] for _ in range(6)} == {11}, "both workers")
    time.sleep(2.5)  # two more reload intervals: nobody counts the same change again
    samples = scrape(server)
    assert file_counts(samples) == expected
    assert value(samples, "feedservice_seed_errors", kind="yaml") == 1
    assert value(samples, "feedservice_articles") == 11
    assert value(samples, "feedservice_seed_files") == 12

    # Known requests, spread over both workers by the server; the scrape sums them.
    before = requests_by_labels(scrape(server))
    etag = server.get("/topics/ai.rss")[1]["ETag"]
    for _ in range(5):
        assert server.get("/topics/ai.rss", headers={"If-None-Match": etag})[0] == 304
    for _ in range(6):
        assert server.get("/feeds/all.json")[0] == 200
    for _ in range(3):
        assert server.get("/topics/ai/")[0] == 200
        assert server.get("/nowhere")[0] == 404
    after = requests_by_labels(scrape(server))
    done = delta(after, before)
    done.pop(("/metrics", "text", "200"), None)  # the scrape before ours
    assert done == {
        ("/topics/<name>", "rss", "200"): 1,
        ("/topics/<name>", "rss", "304"): 5,
        ("/feeds/<name>", "json", "200"): 6,
        ("/topics/<name>/", "html", "200"): 3,
        ("unmatched", "other", "404"): 3,
    }

    # The reporting worker dies; granian starts a new one. Nothing counted is lost
    # and the next changes are counted exactly once by whoever reports now.
    victim = reporter_pid(metrics_dir)
    assert victim in pids
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(seen_pids(server) - {victim}) == 2, "a replacement worker", 30)
    assert feed_requests(requests_by_labels(scrape(server))) == feed_requests(after)
    atomic_write(seeds / "a20.md", seed_text(**article_fields(20, topics=["AI"])))
    (seeds / "a7.md").unlink()
    expected = {"added": 5, "changed": 3, "removed": 3}
    wait_for(lambda: file_counts(scrape(server)) == expected, f"file counters {expected}")
    time.sleep(2.5)
    samples = scrape(server)
    assert file_counts(samples) == expected
    assert value(samples, "feedservice_articles") == 11
    assert not list(metrics_dir.glob(f"gauge_live*_{victim}.db"))  # marked dead
    assert reporter_pid(metrics_dir) != victim


def test_scrape_sums_workers_and_restart_starts_from_zero(
    tmp_path: Path, seeds: Path, live_server_factory: Callable[..., LiveServer]
) -> None:
    config = write_config(tmp_path / "feeds.yaml", title="Restart", reload_interval=60)
    write_seed(seeds, "a.md", **article_fields(1, topics=["AI"]))
    server = live_server_factory(seeds, config, workers=2)
    pids = worker_pids(server)
    for _ in range(20):
        server.get("/topics/ai.atom")
    first = scrape(server)
    assert (
        value(
            first, "feedservice_requests_total", route="/topics/<name>", format="atom", status="200"
        )
        == 20
    )
    # The parent rendered page 1 of each feed once, before forking the workers; the
    # scrape sums every process's values, so those renders are counted.
    assert value(first, "feedservice_renders_total") >= 3
    # `serve` made a fresh temporary directory for the values; stopping removes it.
    found = re.search(r"metrics: worker values in (\S+)", server.log())
    assert found, server.log()
    directory = Path(found.group(1))
    assert directory.is_dir() and re.match(r"feedservice-metrics-", directory.name)
    server.stop()
    assert not directory.exists()
    server = live_server_factory(seeds, config, workers=2)
    assert worker_pids(server).isdisjoint(pids)
    again = scrape(server)
    assert (
        value(
            again, "feedservice_requests_total", route="/topics/<name>", format="atom", status="200"
        )
        == 0
    )


def test_temporary_directory_of_a_killed_server_is_swept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(metrics.tempfile, "tempdir", None)  # re-read TMPDIR
    monkeypatch.setenv(metrics.ENV_DIR, "")  # unset: `serve` makes its own directory
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = tmp_path / f"{metrics.TEMP_PREFIX}orphan"
    orphan.mkdir()
    (orphan / metrics.OWNER_NAME).write_text(str(dead.pid))
    (orphan / "counter_1.db").write_bytes(b"x")
    living = tmp_path / f"{metrics.TEMP_PREFIX}living"
    living.mkdir()
    (living / metrics.OWNER_NAME).write_text(str(os.getpid()))
    made, temporary = metrics.prepare_multiprocess_dir()
    assert temporary and made.parent == tmp_path
    assert (made / metrics.OWNER_NAME).read_text() == str(os.getpid())
    assert not orphan.exists() and living.exists()
    metrics.remove_multiprocess_dir(made)
    assert not made.exists()
