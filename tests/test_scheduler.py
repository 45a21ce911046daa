"""The reload scheduler: one job in the loader, following the configured interval; never
in Flask's reloader watcher."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import flask
import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from conftest import REPO, Site, article_fields, free_port, wait_for, write_config, write_seed

from feedservice import cli, settings
from feedservice.runtime import scheduler
from feedservice.store.db import Store


@pytest.fixture
def start() -> Iterator[Callable[[Site], BackgroundScheduler]]:
    """`scheduler.start(site.loader)`, shut down (waiting for a running job) at the end."""
    started: list[BackgroundScheduler] = []

    def run(site: Site) -> BackgroundScheduler:
        started.append(scheduler.start(site.loader))
        return started[-1]

    yield run
    for running in started:
        running.shutdown(wait=True)


def articles(site: Site) -> int:
    return site.get("/healthz").get_json()["articles"]


def interval(running: BackgroundScheduler) -> float:
    return running.get_job(scheduler.JOB_ID).trigger.interval.total_seconds()


def test_the_scheduler_reloads_on_the_interval(
    seeds: Path, tmp_path: Path, site_factory, start
) -> None:
    write_seed(seeds, "a.md", **article_fields(1))
    site = site_factory(seeds, write_config(tmp_path / "feeds.yaml", reload_interval=1))
    running = start(site)
    job = running.get_job(scheduler.JOB_ID)
    assert job.max_instances == 1 and job.coalesce is True  # reloads never overlap
    assert interval(running) == 1
    recurring = [job.id for job in running.get_jobs() if job.id != scheduler.RENDER_ID]
    assert recurring == [scheduler.JOB_ID]  # (and a one-off for pages a reload left)
    write_seed(seeds, "b.md", **article_fields(2))
    wait_for(lambda: articles(site) == 2, "the scheduled reload to publish b.md", timeout=10)
    (seeds / "a.md").unlink()
    wait_for(lambda: articles(site) == 1, "the next scheduled reload", timeout=10)


def test_a_config_change_reschedules_the_reload(
    seeds: Path, tmp_path: Path, site_factory, start
) -> None:
    write_seed(seeds, "a.md", **article_fields(1))
    config = write_config(tmp_path / "feeds.yaml", reload_interval=1)
    site = site_factory(seeds, config)
    running = start(site)
    write_config(config, reload_interval=2)
    wait_for(lambda: interval(running) == 2, "the job to follow the new interval", timeout=10)
    write_seed(seeds, "b.md", **article_fields(2))  # and it still reloads
    wait_for(lambda: articles(site) == 2, "a reload on the new interval", timeout=10)
    health = site.get("/healthz").get_json()
    assert health["status"] == "ok"


def test_a_bad_config_keeps_the_interval_and_the_reloads(
    seeds: Path, tmp_path: Path, site_factory, start
) -> None:
    write_seed(seeds, "a.md", **article_fields(1))
    config = write_config(tmp_path / "feeds.yaml", reload_interval=1)
    site = site_factory(seeds, config)
    running = start(site)
    config.write_text("reload_interval: -5\n", encoding="utf-8")
    wait_for(
        lambda: site.get("/healthz").get_json()["config_error"], "the config error", timeout=10
    )
    assert "reload_interval" in site.get("/healthz").get_json()["config_error"]
    assert interval(running) == 1  # the last good config stays in force
    write_seed(seeds, "b.md", **article_fields(2))
    wait_for(lambda: articles(site) == 2, "a reload despite the bad config", timeout=10)


@pytest.fixture
def dev_serve(
    seeds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], tuple[list[Any], list[dict[str, Any]], Store]]:
    """`serve --dev` in this process, with Flask's `run` and the scheduler recorded
    instead of started."""
    write_seed(seeds, "a.md", **article_fields(1))
    state = tmp_path / "state"
    config = settings.load(None, {}, {"seeds_dir": str(seeds), "state_dir": str(state)})
    schedules: list[Any] = []
    runs: list[dict[str, Any]] = []
    monkeypatch.setattr(scheduler, "start", lambda loader: schedules.append(loader))
    monkeypatch.setattr(flask.Flask, "run", lambda app, **kwargs: runs.append(kwargs))

    def run() -> tuple[list[Any], list[dict[str, Any]], Store]:
        assert cli._serve_dev(config, None, False, {}) == cli.EXIT_OK  # type: ignore[arg-type]
        return schedules, runs, Store.in_dir(state, writable=False)

    return run


def test_no_loader_and_no_scheduler_in_the_reloader_watcher(
    dev_serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WERKZEUG_RUN_MAIN", raising=False)  # the watcher parent
    schedules, runs, store = dev_serve()
    assert schedules == [] and store.generation() is None  # it loads nothing
    assert runs and runs[0]["use_reloader"] is True
    monkeypatch.setenv("WERKZEUG_RUN_MAIN", "true")  # the serving child
    schedules, runs, store = dev_serve()
    assert len(schedules) == 1 and store.generation() is not None
    assert store.generation().summary["articles"] == 1  # type: ignore[union-attr]


def test_dev_server_with_reloader_runs_exactly_one_scheduler(seeds: Path, tmp_path: Path) -> None:
    write_seed(seeds, "a.md", **article_fields(1))
    config = write_config(tmp_path / "feeds.yaml", reload_interval=1)
    port = free_port()
    log = tmp_path / "dev.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "feedservice",
                "serve",
                "--dev",
                "--seeds",
                str(seeds),
                "--config",
                str(config),
                "--port",
                str(port),
                "--state-dir",
                str(tmp_path / "state"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,  # the watcher and its serving child: one group to stop
        )
    try:
        wait_for(lambda: "serving " in log.read_text(), "the loader to start", timeout=30)

        def serves() -> bool:
            try:
                url = f"http://127.0.0.1:{port}/topics/ai.rss"
                with urllib.request.urlopen(url, timeout=5) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for(serves, "the dev server to answer", timeout=30)
        write_seed(seeds, "b.md", **article_fields(2))
        wait_for(lambda: "reload: +1" in log.read_text(), "a scheduled reload", timeout=20)
        time.sleep(2)  # give a second scheduler the chance to show itself
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        with contextlib.suppress(ProcessLookupError):  # the reloader's child, if it outlived it
            os.killpg(process.pid, signal.SIGKILL)
    text = log.read_text()
    assert text.count("INFO feedservice: serving ") == 1, text  # one loader, one scheduler
    assert text.count("reload: +1 ") == 2, text  # the first load and b.md, once each
