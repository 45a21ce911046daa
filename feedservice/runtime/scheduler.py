"""The loader's schedule: one APScheduler job that reloads every `reload_interval` seconds.

It runs in the loader only, whatever the number of serving workers, so the seed
directory is read once per interval by one process.
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler

from feedservice.runtime.loader import Loader, Reloaded

log = logging.getLogger("feedservice")
JOB_ID = "reload"


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
        if (
            reloaded.site["reload_interval"]
            != scheduler.get_job(JOB_ID).trigger.interval.total_seconds()
        ):
            scheduler.reschedule_job(
                JOB_ID, trigger="interval", seconds=reloaded.site["reload_interval"]
            )

    loader.listeners.append(follow_interval)
    scheduler.start()
    log.info("reloading %s every %d s", loader.seeds, interval)
    return scheduler
