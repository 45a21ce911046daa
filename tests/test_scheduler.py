"""The reload scheduler: one per serving process, never in Flask's reloader watcher."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, article_fields, free_port, write_config, write_seed

from feedservice import scheduler
from feedservice.service import Service


@pytest.fixture(autouse=True)
def _stop_schedulers():
    yield
    scheduler.stop_reloading()


def test_scheduler_reloads_on_the_interval_and_starts_once(seeds: Path, tmp_path: Path) -> None:
    write_seed(seeds, "a.md", **article_fields(1))
    service = Service(seeds, write_config(tmp_path / "feeds.yaml", reload_interval=1))
    first = scheduler.start_reloading(service)
    assert first is not None
    assert scheduler.start_reloading(service) is first  # idempotent within a process
    job = first.get_job(scheduler.JOB_ID)
    assert job.max_instances == 1 and job.coalesce is True
    write_seed(seeds, "b.md", **article_fields(2))
    deadline = time.monotonic() + 5
    while len(service.snapshot.catalog.articles) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(service.snapshot.catalog.articles) == 2


def test_no_scheduler_in_the_reloader_watcher(
    seeds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = Service(seeds, write_config(tmp_path / "feeds.yaml"))
    monkeypatch.setenv("FEEDSERVICE_DEV_RELOADER", "1")
    monkeypatch.delenv("WERKZEUG_RUN_MAIN", raising=False)
    assert scheduler.start_reloading(service) is None
    monkeypatch.setenv("WERKZEUG_RUN_MAIN", "true")  # the serving child
    assert scheduler.start_reloading(service) is not None


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
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    try:
        deadline = time.monotonic() + 20
        while "reloading" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)  # give a second scheduler the chance to appear
    finally:
        process.terminate()
        process.wait(timeout=10)
    text = log.read_text()
    assert text.count("INFO feedservice: reloading") == 1, text
