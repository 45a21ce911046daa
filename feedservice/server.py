"""Production serving: granian workers, each with its own snapshot and one scheduler.

granian (a Rust HTTP server) parses requests outside the GIL and keeps slow
clients off the Python threads. The parent process loads the seeds once
(parsing across every core when the parse cache is cold) and builds the first
snapshot; granian then forks its workers, which inherit that snapshot instead
of each loading 100k files again. Each worker starts exactly one reload
scheduler and from then on keeps its own snapshot up to date. Once every worker
has taken the inherited snapshot, the parent drops its copy; a worker granian
respawns later loads the seeds itself. Outputs are deterministic, so every
worker serves identical bytes and ETags.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import os
import threading
from pathlib import Path
from typing import Any

from feedservice.fastpath import FastPath, WSGIApp
from feedservice.metrics import single_process
from feedservice.parsecache import SaveInChild
from feedservice.progress import initial_store, seed_store
from feedservice.scheduler import start_reloading
from feedservice.service import Service
from feedservice.web import create_app
from feedservice.websub import WebSubPublisher

ENV_SEEDS = "FEEDSERVICE_SEEDS_DIR"
ENV_CONFIG = "FEEDSERVICE_CONFIG_FILE"
ENV_WORKERS = "FEEDSERVICE_WORKER_COUNT"
MAX_HEAD_BYTES = 16384  # request line + headers; larger heads get 431 from granian


def build_wsgi(service: Service) -> WSGIApp:
    """The full WSGI stack: the fast path in front of the Flask app."""
    app = create_app(service)
    return FastPath(service, app.wsgi_app)


class _Inherited:
    """The snapshot the parent built before granian forked its workers."""

    service: Service | None = None
    taken: tuple[int, int] | None = None  # pipe: each worker writes one byte on taking it
    cold_save: SaveInChild | None = None  # a cold load's parse cache write, still running

    @classmethod
    def build(cls, seeds: Path, config: Path, workers: int) -> None:
        with single_process():
            store = seed_store(str(seeds))
            store.use_children = True  # scan beside the cache load; a cold save beside the start
            store.freeze_first_load = True  # (this heap is frozen below anyway)
            cls.service = Service(str(seeds), str(config), store=store)
            cls.cold_save = store.cold_save
        read_end, write_end = os.pipe()
        cls.taken = (read_end, write_end)
        _return_free_memory()  # what loading freed is not copied into every worker's RSS
        gc.freeze()  # the workers' collections never touch (and so never copy) these pages
        threading.Thread(
            target=cls._release_when_taken, args=(workers,), name="release-snapshot", daemon=True
        ).start()

    @classmethod
    def _release_when_taken(cls, workers: int) -> None:
        assert cls.taken is not None
        read_end, write_end = cls.taken
        for _ in range(workers):
            if not os.read(read_end, 1):
                return
        cls.service, cls.taken = None, None  # every worker has its copy: the parent needs none
        os.close(read_end)
        os.close(write_end)
        gc.unfreeze()
        gc.collect()
        cls.wait_for_cold_save()  # (reaps the child: no zombie while the server runs)

    @classmethod
    def wait_for_cold_save(cls) -> None:
        if cls.cold_save is not None:
            cls.cold_save.wait()

    @classmethod
    def take(cls) -> Service | None:
        """In a freshly forked worker: the inherited snapshot, once; None if there is none."""
        service, cls.service = cls.service, None
        if service is not None and cls.taken is not None:
            read_end, write_end = cls.taken
            os.write(write_end, b"1")
            os.close(read_end)
            os.close(write_end)
            cls.taken = None
        return service


def _return_free_memory() -> None:
    """glibc keeps freed heap memory for reuse; hand it back to the OS (Linux/glibc only)."""
    with contextlib.suppress(OSError, AttributeError):  # another libc: nothing to trim
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)


def create_app_from_env() -> WSGIApp:
    """granian's per-worker factory; the CLI passes paths through the environment."""
    seeds = os.environ[ENV_SEEDS]
    service = _Inherited.take()
    if service is None:  # a worker granian respawned: load the seeds here
        service = Service(seeds, os.environ[ENV_CONFIG], store=initial_store(seeds))
    workers = int(os.environ.get(ENV_WORKERS, "1"))
    service.listeners.append(WebSubPublisher.for_service(service, workers))
    start_reloading(service)
    return build_wsgi(service)


def serve(
    seeds: Path,
    config: Path,
    host: str,
    port: int,
    workers: int,
    log_config: dict[str, Any] | None = None,
) -> None:
    from granian import Granian
    from granian.http import HTTP1Settings

    os.environ[ENV_SEEDS] = str(seeds.resolve())
    os.environ[ENV_CONFIG] = str(config.resolve())
    os.environ[ENV_WORKERS] = str(workers)  # WebSub: one publisher among the workers
    _Inherited.build(seeds.resolve(), config.resolve(), workers)  # load once, before the fork
    try:
        Granian(
            "feedservice.server:create_app_from_env",
            address=host,
            port=port,
            interface="wsgi",
            factory=True,
            workers=workers,
            working_dir=Path.cwd(),
            http="1",
            http1_settings=HTTP1Settings(max_buffer_size=MAX_HEAD_BYTES),
            blocking_threads=8,
            backpressure=128,
            backlog=2048,
            respawn_failed_workers=True,
            log_access=False,
            log_dictconfig=log_config,  # granian's own lines in our format (json: one object each)
        ).serve()
    finally:
        _Inherited.wait_for_cold_save()  # stopped right after a cold start: the next one is warm
