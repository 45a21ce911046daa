"""Production serving: one loader process, and granian workers that only read the store.

(Flask and granian are imported only when serving starts: the loader process, which
imports this module, needs neither.)

    feedservice serve (this process: checks, supervises, runs granian's main loop)
    ├── loader   (spawned: scan, parse, catalog, render, commit; APScheduler; WebSub)
    └── workers  (forked by granian from this lean process: answer from the store)

Every child ends when this process is gone, even after a SIGKILL (it watches its
parent), so no worker ever serves on its own. A second service cannot start on the
same address (the port is checked first: granian's SO_REUSEPORT would share it) or
on the same state directory (the loader's lock).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import signal
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from feedservice.runtime import metrics
from feedservice.runtime.processes import exit_with_parent, spawn
from feedservice.store.db import Store

log = logging.getLogger("feedservice")
MAX_HEAD_BYTES = 16384  # request line and headers; larger heads get 431 from granian
BLOCKING_THREADS = min(4, 2 * (os.cpu_count() or 1) + 1)  # Python threads per worker
# granian holds one of a worker's BACKPRESSURE permits per open connection, idle ones
# included, until the connection closes: far above any burst of idle or slow clients
# (~10 KB each), below the unit's LimitNOFILE. HEADER_TIMEOUT_MS bounds how long a
# connection may take to send a request head, and how long it may sit idle before one.
BACKPRESSURE = 8192
HEADER_TIMEOUT_MS = 5000
LOCK_NAME = "service.lock"


class ServeError(Exception):
    """The service cannot start; the message says why, in one line."""


@dataclass(frozen=True)
class LoaderArgs:
    """Everything the loader process needs, passed as arguments (never the environment)."""

    state_dir: Path
    seeds: Path
    config_path: Path
    config_required: bool
    environ: dict[str, str]
    options: dict[str, Any]
    log_config: dict[str, Any] = field(default_factory=dict)
    parent: int = 0


def check_address(host: str, port: int) -> None:
    """Refuse an address another process listens on (SO_REUSEADDR only: no sharing)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise ServeError(f"address {host}:{port} is already in use") from None
            raise ServeError(f"cannot listen on {host}:{port}: {error.strerror}") from None


def lock_state_dir(state_dir: Path) -> int:
    """Hold the state directory for this service's lifetime (released when it exits)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise ServeError(f"state directory {state_dir} is in use by another feedservice") from None
    return fd


def worker_app(state_dir: Path, parent: int) -> Any:
    """A granian worker's WSGI app: the store's newest generation, nothing of its own."""
    from feedservice.http.app import create_app  # (imported by `serve` before the fork)

    exit_with_parent(parent)
    store = Store.in_dir(state_dir, writable=False)
    return metrics.instrument(create_app(store), store).wsgi_app


def run_loader(args: LoaderArgs) -> None:
    """The loader process: the first reload, then one APScheduler job, until stopped."""
    import logging.config

    from feedservice.runtime import scheduler
    from feedservice.runtime.loader import Loader
    from feedservice.runtime.websub import WebSubPublisher

    exit_with_parent(args.parent)
    if args.log_config:
        logging.config.dictConfig(args.log_config)
    store = Store.in_dir(args.state_dir)
    loader = Loader(
        store,
        args.seeds,
        args.config_path,
        config_required=args.config_required,
        environ=args.environ,
        options=args.options,
        workers=os.cpu_count() or 1,
    )
    first = [True]

    def observe(reloaded: Any) -> None:
        metrics.observe_reload(reloaded, first[0])
        first[0] = False

    publisher = WebSubPublisher()
    fresh = store.generation() is None  # every feed is new: nothing to announce yet
    loader.listeners.append(observe)
    if not fresh:
        loader.listeners.append(publisher)  # (changes made while the service was down)
    loader.reload()
    if fresh:
        loader.listeners.append(publisher)
    announce(loader)
    reloading = scheduler.start(loader)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    stopped.wait()
    reloading.shutdown(wait=False)


def announce(loader: Any) -> None:
    """The one line a start prints: what is served, and where."""
    if loader.catalog is not None:
        catalog = loader.catalog
        articles, feeds = len(catalog.articles), len(catalog.feeds)
        log.info("serving %d articles in %d feeds at %s/", articles, feeds, loader.config.base_url)


class LoaderProcess:
    """Runs the loader in a spawned process and starts it again if it dies."""

    def __init__(self, args: LoaderArgs) -> None:
        self.args = args
        self.stopping = threading.Event()
        self.process = self._spawn()
        threading.Thread(target=self._supervise, name="loader-supervisor", daemon=True).start()

    def _spawn(self) -> Any:
        return spawn(run_loader, (self.args,), "feedservice-loader")

    def _supervise(self) -> None:
        while not self.stopping.is_set():
            self.process.join()
            code = self.process.exitcode
            if self.stopping.is_set() or code in (0, -signal.SIGTERM, -signal.SIGINT):
                return  # stopped on purpose (systemd signals every process of the service)
            log.error("the loader exited with status %s; starting it again", code)
            if self.stopping.wait(1):
                return
            self.process = self._spawn()

    def stop(self, timeout: float = 10) -> None:
        self.stopping.set()
        self.process.terminate()
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def serve(config: Any, args: LoaderArgs, log_config: dict[str, Any]) -> None:
    """Run the service until SIGTERM or SIGINT; raises ServeError if it cannot start."""
    check_address(config.host, config.port)
    lock = lock_state_dir(config.state_dir)
    Store.in_dir(config.state_dir).close()  # the schema exists before any worker reads
    metrics.prepare_directory(config.state_dir)
    loader = LoaderProcess(args)  # first: it starts while this process imports the rest
    from granian import Granian
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    import feedservice.http.app  # noqa: F401  (the workers fork with it imported)

    parent = os.getpid()
    try:
        server = Granian(
            "feedservice",
            address=config.host,
            port=config.port,
            interface="wsgi",
            workers=config.workers,
            http="1",
            http1_settings=HTTP1Settings(
                max_buffer_size=MAX_HEAD_BYTES, header_read_timeout=HEADER_TIMEOUT_MS
            ),
            blocking_threads=BLOCKING_THREADS,
            backpressure=BACKPRESSURE,
            backlog=2048,
            respawn_failed_workers=True,
            workers_kill_timeout=config.drain_timeout or 0.001,  # (granian: 0 = no limit)
            log_access=config.access_log,
            log_dictconfig=log_config,
            # granian sets its own logger's level from this, over log_dictconfig: its
            # start-up chatter only when debugging (the loader says where it serves, once).
            log_level=LogLevels.debug if config.log_level == "debug" else LogLevels.warning,
        )
        server.serve(target_loader=lambda: worker_app(config.state_dir, parent), wrap_loader=False)
    finally:
        loader.stop()
        os.close(lock)
