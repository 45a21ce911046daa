"""The loader's schedule: an APScheduler job that reloads every `reload_interval` seconds,
and a one-off job when the loader asks to be woken earlier (Loader.wake).

It runs in the loader only, whatever the number of serving workers, so the seed
directory is read once per interval by one process.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from feedservice.runtime.loader import Loader, Reloaded

log = logging.getLogger("feedservice")
JOB_ID = "reload"
WAKE_ID = "wake"
RENDER_ID = "render"
RENDER_PAUSE = 0.2  # seconds of rendering, then as long a pause


def start(loader: Loader) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(daemon=True, timezone="UTC")
    interval = loader.config.reload_interval
    scheduler.add_job(
        loader.reload,
        "interval",
        seconds=interval,
        id=JOB_ID,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
    )

    def follow_interval(reloaded: Reloaded) -> None:
        # A config reload may change the interval: reschedule without a restart.
        job = scheduler.get_job(JOB_ID)  # (None once the scheduler has shut down)
        seconds = reloaded.site["reload_interval"]
        if job is not None and seconds != job.trigger.interval.total_seconds():
            scheduler.reschedule_job(JOB_ID, trigger="interval", seconds=seconds)

    def wake(at: float) -> None:
        # One extra reload at a given time (a config file settling; an article falling due),
        # unless one is due sooner: the reload it runs asks again for what it still awaits.
        when = datetime.fromtimestamp(at, UTC)
        sooner = getattr(scheduler.get_job(WAKE_ID), "next_run_time", None)
        if sooner is None or when < sooner or sooner <= datetime.now(UTC):  # (or running)
            scheduler.add_job(loader.reload, "date", run_date=when, id=WAKE_ID,
                              replace_existing=True, misfire_grace_time=None)  # fmt: skip

    def render_soon(_: Reloaded | None = None) -> None:
        # Pages a reload left: rendered in short steps, each followed by a pause as long,
        # so reloads and the workers keep their share of the machine.
        when = datetime.now(UTC) + timedelta(seconds=RENDER_PAUSE)
        scheduler.add_job(step, "date", run_date=when, id=RENDER_ID, replace_existing=True)

    def step() -> None:
        if loader.render_deferred(RENDER_PAUSE):
            render_soon()

    loader.listeners.append(follow_interval)
    loader.listeners.append(render_soon)
    loader.wake = wake
    render_soon()  # (what the first load left)
    if loader.next_due is not None:  # (the first reload ran before there was a schedule)
        wake(loader.next_due / 1e6)
    scheduler.start()
    log.debug("reloading %s every %d s", loader.seeds, interval)
    return scheduler
