"""Production serving: granian workers, each with its own snapshot and one scheduler.

granian (a Rust HTTP server) parses requests outside the GIL and keeps slow
clients off the Python threads; each worker process imports
`create_app_from_env`, loads the seeds and starts exactly one reload scheduler.
Outputs are deterministic, so every worker serves identical bytes and ETags.
"""

from __future__ import annotations

import os
from pathlib import Path

from feedservice.fastpath import FastPath, WSGIApp
from feedservice.scheduler import start_reloading
from feedservice.service import Service
from feedservice.web import create_app

ENV_SEEDS = "FEEDSERVICE_SEEDS_DIR"
ENV_CONFIG = "FEEDSERVICE_CONFIG_FILE"
MAX_HEAD_BYTES = 16384  # request line + headers; larger heads get 431 from granian


def build_wsgi(service: Service) -> WSGIApp:
    """The full WSGI stack: the fast path in front of the Flask app."""
    app = create_app(service)
    return FastPath(service, app.wsgi_app)


def create_app_from_env() -> WSGIApp:
    """granian's per-worker factory; the CLI passes paths through the environment."""
    service = Service(os.environ[ENV_SEEDS], os.environ[ENV_CONFIG])
    start_reloading(service)
    return build_wsgi(service)


def serve(seeds: Path, config: Path, host: str, port: int, workers: int) -> None:
    from granian import Granian
    from granian.http import HTTP1Settings

    os.environ[ENV_SEEDS] = str(seeds.resolve())
    os.environ[ENV_CONFIG] = str(config.resolve())
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
    ).serve()
