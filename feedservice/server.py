"""Production serving: granian workers, each with its own snapshot and one scheduler.

granian (a Rust HTTP server) parses requests outside the GIL and keeps slow
clients off the Python threads; each worker process imports
`create_app_from_env`, loads the seeds and starts exactly one reload scheduler.
Outputs are deterministic, so every worker serves identical bytes and ETags.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from feedservice.catalog import prime_in_subprocess
from feedservice.fastpath import FastPath, WSGIApp
from feedservice.progress import initial_store
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


def create_app_from_env() -> WSGIApp:
    """granian's per-worker factory; the CLI passes paths through the environment."""
    seeds = os.environ[ENV_SEEDS]
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
    prime_in_subprocess(seeds)  # parse once on every core; workers then load the cache
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
