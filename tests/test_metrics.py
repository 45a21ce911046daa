"""/metrics: Prometheus text through the Flask client, and a churn run on a real
two-worker server whose counters must agree with what the test did.

Request counters are counted by each worker and summed at scrape time (multiprocess
mode, `<state_dir>/metrics`); reload and render figures are counted by the loader
process; the gauges are read from the store's newest generation when scraped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import (
    LiveServer,
    Site,
    article_fields,
    seed_text,
    wait_for,
    write_config,
    write_seed,
)
from prometheus_client.parser import text_string_to_metric_families

from feedservice.http.app import create_app
from feedservice.runtime import metrics
from feedservice.runtime.loader import Loader
from feedservice.store.db import Store

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


def file_counts(samples: Samples) -> dict[str, float]:
    return {c: value(samples, "feedservice_reload_files_total", change=c) for c in metrics.CHANGES}


# --- in-process, through the Flask test client -------------------------------------------


def in_process_scrape(site: Site) -> Samples:
    response = site.get("/metrics")
    assert response.status_code == 200
    return parse(response.get_data(as_text=True))


def observe_reloads(loader: Loader) -> None:
    """The loader process's metrics listener, as `serve` wires it (the first reload's
    files are the initial load, not changes)."""
    first = [True]

    def observe(reloaded) -> None:
        metrics.observe_reload(reloaded, first[0])
        first[0] = False

    loader.listeners.append(observe)


def test_metrics_endpoint_counts_flask_requests(
    seeds: Path, config_file: Path, site_factory: Callable[..., Site]
) -> None:
    write_seed(seeds, "a.md", **article_fields(1, topics=["AI"]))
    write_seed(seeds, "b.md", **article_fields(2, topics=["AI", "Robots"]))
    site = site_factory(seeds, config_file)
    client = site.client
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
    client.post("/topics/ai.rss")  # 405
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
        ("/topics/<name>", "rss", "405"): 1,
        ("/metrics", "text", "200"): 1,  # the first scrape
    }
    assert not any("/no/such" in route for route, _, _ in requests_by_labels(after))
    # Gauges describe the store's newest generation.
    assert value(after, "feedservice_articles") == 2
    assert value(after, "feedservice_topics") == 2
    assert value(after, "feedservice_feeds") == 4  # all, ml, ai, robots
    assert value(after, "feedservice_seed_files") == 2
    generation = site.store.generation()
    assert generation is not None
    assert value(after, "feedservice_generation") == generation.id
    assert value(after, "feedservice_last_reload_timestamp_seconds") == pytest.approx(
        generation.committed_at
    )


def test_renders_are_counted_and_timed_by_the_loader(
    seeds: Path, config_file: Path, site_factory: Callable[..., Site]
) -> None:
    write_seed(seeds, "a.md", **article_fields(1, topics=["AI"]))
    site = site_factory(seeds, config_file)
    before = in_process_scrape(site)
    stored = site.store.fingerprints()
    write_seed(seeds, "b.md", **article_fields(2, topics=["Robots"]))
    assert site.reload() is not None
    # What the loader rendered, read off the store: each new or re-rendered document.
    now = site.store.fingerprints()
    rendered = sum(1 for key, fingerprint in now.items() if stored.get(key) != fingerprint)
    assert rendered > 0
    after = in_process_scrape(site)
    for name in ("feedservice_renders_total", "feedservice_render_duration_seconds_count"):
        assert value(after, name) - value(before, name) == rendered, name
    assert value(after, "feedservice_render_duration_seconds_sum") > value(
        before, "feedservice_render_duration_seconds_sum"
    )
    # Serving renders nothing more in the loader's name.
    for path in ("/topics/robots.rss", "/topics/ai.atom", "/feeds/all.json?page=1", "/"):
        assert site.get(path).status_code == 200
    assert value(in_process_scrape(site), "feedservice_renders_total") == value(
        after, "feedservice_renders_total"
    )


def test_reload_metrics_follow_changes_and_every_reader_agrees(
    tmp_path: Path, seeds: Path, config_file: Path
) -> None:
    write_seed(seeds, "a.md", **article_fields(1))
    write_seed(seeds, "b.md", **article_fields(2))
    state = tmp_path / "state"
    loader = Loader(
        Store.in_dir(state), seeds, config_file, environ={"FEEDSERVICE_CONFIG_SETTLE": "0"}
    )
    observe_reloads(loader)
    loader.reload()  # the initial load: not counted as changes
    # Two workers' apps on the same store: gauges come from the store, so they agree.
    readers = []
    for _ in range(2):
        store = Store.in_dir(state, writable=False)
        readers.append(metrics.instrument(create_app(store), store).test_client())

    def scrape(reader) -> Samples:
        return parse(reader.get("/metrics").get_data(as_text=True))

    before = scrape(readers[0])
    write_seed(seeds, "c.md", **article_fields(3))
    atomic_write(seeds / "a.md", seed_text(**article_fields(1, title="Edited")))
    (seeds / "b.md").unlink()
    (seeds / "bad.md").write_text("---\ntitle: [unclosed\n---\n", encoding="utf-8")
    assert loader.reload() is not None
    after = scrape(readers[1])
    then, now = file_counts(before), file_counts(after)
    changes = {change: now[change] - then[change] for change in metrics.CHANGES}
    assert changes == {"added": 2, "changed": 1, "removed": 1}
    assert (
        value(after, "feedservice_reload_duration_seconds_count")
        - value(before, "feedservice_reload_duration_seconds_count")
        == 1
    )
    assert loader.reload() is None  # nothing changed: nothing committed, nothing counted
    gauges = ("feedservice_seed_files", "feedservice_articles", "feedservice_generation")
    scrapes = [scrape(reader) for reader in readers]
    for name in gauges:
        assert value(scrapes[0], name) == value(scrapes[1], name), name
    assert value(scrapes[0], "feedservice_reload_duration_seconds_count") == value(
        after, "feedservice_reload_duration_seconds_count"
    )
    assert value(after, "feedservice_seed_files") == 3
    assert value(after, "feedservice_articles") == 2
    assert value(after, "feedservice_generation") == 2
    assert value(after, "feedservice_config_error") == 0
    # A bad config: the gauge says so, from every reader, until it is fixed.
    config_file.write_text("topic_limit: lots\n", encoding="utf-8")
    assert loader.reload() is not None
    assert [value(scrape(reader), "feedservice_config_error") for reader in readers] == [1, 1]
    write_config(config_file, title="Fixed")
    assert loader.reload() is not None
    assert [value(scrape(reader), "feedservice_config_error") for reader in readers] == [0, 0]
    # Bad seed files, by kind.
    assert value(after, "feedservice_seed_errors", kind="yaml") == 1
    assert value(after, "feedservice_seed_errors", kind="field") == 0


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


def reloads_counted(samples: Samples) -> float:
    return value(samples, "feedservice_reload_duration_seconds_count")


def test_churn_counters_agree_across_workers(
    tmp_path: Path, seeds: Path, live_server_factory: Callable[..., LiveServer]
) -> None:
    config = write_config(tmp_path / "feeds.yaml", title="Churn", reload_interval=1)
    for n in range(10):
        write_seed(seeds, f"a{n}.md", **article_fields(n, topics=["AI"]))
    state = tmp_path / "state"
    metrics_dir = state / "metrics"
    metrics_dir.mkdir(parents=True)
    (metrics_dir / "counter_4242.db").write_bytes(b"stale file of an earlier run")
    server = live_server_factory(seeds, config, workers=2, extra_args=("--state-dir", str(state)))
    assert not (metrics_dir / "counter_4242.db").exists()  # emptied on start
    pids = worker_pids(server)
    start = scrape(server)
    assert value(start, "feedservice_articles") == 10
    assert value(start, "feedservice_seed_files") == 10
    assert file_counts(start) == {"added": 0, "changed": 0, "removed": 0}  # initial load
    assert reloads_counted(start) == value(start, "feedservice_generation") == 1

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
    # Every worker reads the same store, so the articles agree everywhere.
    wait_for(lambda: {server.health()["articles"] for _ in range(6)} == {11}, "both workers")
    time.sleep(2.5)  # two more reload intervals: nobody counts the same change again
    samples = scrape(server)
    assert file_counts(samples) == expected
    assert value(samples, "feedservice_articles") == 11
    assert value(samples, "feedservice_seed_files") == 12
    # One committed reload, one observation: counted once, by the loader alone.
    assert reloads_counted(samples) == value(samples, "feedservice_generation")
    assert value(samples, "feedservice_generation") == server.health()["generation"] >= 2

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

    # A worker dies; granian starts a new one. Nothing counted is lost (the dead
    # worker's counts stay in its file) and the next changes are counted exactly once.
    victim = sorted(pids)[0]
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
    assert reloads_counted(samples) == value(samples, "feedservice_generation")
    assert value(samples, "feedservice_seed_errors", kind="yaml") == 1
    assert value(samples, "feedservice_config_error") == 0


def test_scrape_sums_workers_and_a_restart_starts_from_zero(
    tmp_path: Path, seeds: Path, live_server_factory: Callable[..., LiveServer]
) -> None:
    config = write_config(tmp_path / "feeds.yaml", title="Restart", reload_interval=60)
    write_seed(seeds, "a.md", **article_fields(1, topics=["AI"]))
    state = tmp_path / "state"
    server = live_server_factory(seeds, config, workers=2, extra_args=("--state-dir", str(state)))
    pids = worker_pids(server)
    for _ in range(20):
        server.get("/topics/ai.atom")
    first = scrape(server)
    atom_200 = {"route": "/topics/<name>", "format": "atom", "status": "200"}
    assert value(first, "feedservice_requests_total", **atom_200) == 20
    assert reloads_counted(first) == 1
    assert list((state / "metrics").glob("*.db"))  # the values live in the state dir
    # kill -9 of the whole service: its value files stay behind, and the next start
    # on the same state directory must not add them up again.
    port = server.port  # the same public URL: nothing to render again
    server.stop(signal.SIGKILL)
    left = {path.name for path in (state / "metrics").glob("*.db")}
    assert left
    args = ("--state-dir", str(state))
    server = live_server_factory(seeds, config, workers=2, port=port, extra_args=args)
    assert worker_pids(server).isdisjoint(pids)
    again = scrape(server)
    assert value(again, "feedservice_requests_total", **atom_200) == 0
    assert not left & {path.name for path in (state / "metrics").glob("*.db")}
    # The store was current: the new loader rendered nothing, and counted only the
    # reloads it committed itself.
    assert value(again, "feedservice_articles") == 1
    generations = value(first, "feedservice_generation")

    def counted_since_restart() -> bool:
        samples = scrape(server)
        return reloads_counted(samples) == value(samples, "feedservice_generation") - generations

    wait_for(counted_since_restart, "reload counts of this start only")
    time.sleep(1)
    assert value(scrape(server), "feedservice_renders_total") == 0
    # Before the kill, the loader had rendered every stored document once, in its own
    # process, and a worker's scrape included those counts.
    documents = len(Store.in_dir(state, writable=False).fingerprints())
    assert documents >= 3
    assert value(first, "feedservice_renders_total") == documents
