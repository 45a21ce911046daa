"""The periodic reload: one APScheduler BackgroundScheduler per serving process.

Flask's reloader runs the app module twice (a watcher parent and a serving
child) and gunicorn/granian run one copy per worker; `start_reloading` starts a
scheduler only in a process that serves, and at most once per process.
"""

from __future__ import annotations

import logging
import os
import threading

from apscheduler.schedulers.background import BackgroundScheduler

from feedservice.service import Service, Snapshot

log = logging.getLogger("feedservice")
JOB_ID = "reload-seeds"
_started: dict[int, BackgroundScheduler] = {}  # pid → scheduler; survives fork correctly
_guard = threading.Lock()


def is_reloader_parent() -> bool:
    """True in the Werkzeug reloader's watcher process, which serves nothing."""
    return (
        os.environ.get("FEEDSERVICE_DEV_RELOADER") == "1"
        and os.environ.get("WERKZEUG_RUN_MAIN") != "true"
    )


def start_reloading(service: Service) -> BackgroundScheduler | None:
    """Start this process's one reload scheduler (idempotent)."""
    if is_reloader_parent():
        return None
    with _guard:
        existing = _started.get(os.getpid())
        if existing is not None:
            return existing
        scheduler = BackgroundScheduler(daemon=True, timezone="UTC")
        scheduler.add_job(
            service.reload,
            "interval",
            seconds=service.reload_interval,
            id=JOB_ID,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )

        def follow_interval(previous: Snapshot, current: Snapshot) -> None:
            # A config reload may change the interval; reschedule without a restart.
            if previous.config.reload_interval != current.config.reload_interval:
                scheduler.reschedule_job(
                    JOB_ID, trigger="interval", seconds=service.reload_interval
                )

        service.listeners.append(follow_interval)
        scheduler.start()
        _started[os.getpid()] = scheduler
        log.info("reloading %s every %d s", service.seeds_dir, service.reload_interval)
        return scheduler


def stop_reloading() -> None:
    with _guard:
        scheduler = _started.pop(os.getpid(), None)
    if scheduler is not None:
        scheduler.shutdown(wait=False)
