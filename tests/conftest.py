"""Shared fixtures: real seed files in temp dirs, the Flask client, a real server.

Helpers here write seed files the way admins do (YAML front matter between
`---` lines). `make_site` runs the real loader into a store in a temp dir and
serves it through the real WSGI app (Flask's test client); `start_server` runs
`feedservice serve` as a subprocess on a free loopback port, so tests exercise
the same code path users run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask.testing import FlaskClient

from feedservice.http.app import create_app
from feedservice.runtime.loader import Loader, Reloaded
from feedservice.runtime.metrics import instrument
from feedservice.store.db import Store

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
REALWORLD = SHARED / "realworld"
SAMPLE_SEEDS = REPO / "seeds"


def seed_text(**fields: Any) -> str:
    """A seed file's text: YAML front matter from `fields`, then an empty body."""
    return "---\n" + yaml.safe_dump(fields, allow_unicode=True, sort_keys=False) + "---\n"


def article_fields(n: int, **overrides: Any) -> dict[str, Any]:
    """A valid article; `n` makes its link, title and date unique."""
    fields: dict[str, Any] = {
        "category": "news",
        "title": f"Article number {n}",
        "excerpt": f"Excerpt of article {n}.",
        "publishedDateTime": f"2021-03-{(n % 28) + 1:02d}T{n % 24:02d}:00:00Z",
        "webUrl": f"https://example.com/articles/{n}",
        "type": "article",
        "quality": 50,
        "published": True,
        "provider": {"name": "Example News", "domain": "example.com"},
        "topics": ["AI"],
        "secured": f"SECRET-{n}-do-not-publish",
    }
    fields.update(overrides)
    return fields


def write_seed(directory: Path, name: str, **fields: Any) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(seed_text(**fields), encoding="utf-8")
    return path


def write_config(path: Path, **keys: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(keys, sort_keys=False), encoding="utf-8")
    return path


def bump_mtime(path: Path) -> None:
    """Make a rewrite visible to (size, mtime) change detection on coarse clocks."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    directory = tmp_path / "seeds"
    directory.mkdir()
    return directory


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return write_config(
        tmp_path / "config" / "feeds.yaml",
        title="Test feeds",
        base_url="http://feeds.test",
        reload_interval=1,
        feeds=[
            {
                "name": "ml",
                "title": "ML",
                "description": "Machine learning",
                "topics": ["Machine Learning"],
            },
        ],
    )


@dataclass
class Site:
    """The loader and a worker's app over one store in a temp dir, in this process."""

    loader: Loader
    store: Store  # the loader's (writable) store
    client: FlaskClient  # a worker's app: it reads the store only

    def reload(self) -> Reloaded | None:
        return self.loader.reload()

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, **kwargs)


def make_site(
    seeds_dir: Path,
    config: Path | None,
    state_dir: Path,
    *,
    environ: dict[str, str] | None = None,
    **options: Any,
) -> Site:
    """Load `seeds_dir` with `config` (one reload) and serve the result. A config file a
    test rewrites applies at its next reload (no settle time, unless a test sets one)."""
    options.setdefault("config_settle", 0)
    store = Store.in_dir(state_dir)
    loader = Loader(store, seeds_dir, config, environ=environ or {}, options=options)
    loader.reload()
    reader = Store.in_dir(state_dir, writable=False)
    return Site(loader, store, instrument(create_app(reader), reader).test_client())


@pytest.fixture
def site_factory(tmp_path: Path) -> Callable[..., Site]:
    """`site_factory(seeds, config, **options)`: each call gets its own state directory."""
    count = [0]

    def factory(seeds_dir: Path, config: Path | None, **kwargs: Any) -> Site:
        count[0] += 1
        return make_site(seeds_dir, config, tmp_path / f"state-{count[0]}", **kwargs)

    return factory


def wait_for(check: Callable[[], object], what: str = "condition", timeout: float = 20) -> float:
    """Poll `check` until it is true; return the seconds it took, or fail after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    """`feedservice serve` running in a subprocess on a loopback port."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(
        self, path: str, headers: dict[str, str] | None = None, method: str = "GET"
    ) -> tuple[int, Any, bytes]:
        """(status, headers, body); headers is case-insensitive (granian sends lowercase)."""
        request = urllib.request.Request(self.url + path, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read()

    def health(self) -> dict[str, Any]:
        return json.loads(self.get("/healthz")[2])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server and everything it started (its own process group)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # a child that outlived it, if any


def start_server(
    seeds_dir: Path,
    config: Path,
    tmp: Path,
    *,
    workers: int = 1,
    extra_args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    port: int | None = None,
    wait_articles: int | None = None,
) -> LiveServer:
    port = port or free_port()
    log_path = tmp / f"server-{port}.log"
    environment = {**os.environ, "FEEDSERVICE_BASE_URL": f"http://127.0.0.1:{port}", **(env or {})}
    if "--state-dir" not in extra_args and "FEEDSERVICE_STATE_DIR" not in environment:
        extra_args = (*extra_args, "--state-dir", str(tmp / f"state-{port}"))
    command = [
        sys.executable,
        "-m",
        "feedservice",
        "serve",
        "--seeds",
        str(seeds_dir),
        "--config",
        str(config),
        "--port",
        str(port),
        "--workers",
        str(workers),
        *extra_args,
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=REPO,
            start_new_session=True,  # its own process group: stop() can end all of it
        )
    server = LiveServer(process, port, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
        try:
            health = server.health()
            if health.get("generation") and (
                wait_articles is None or health["articles"] >= wait_articles
            ):
                return server
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server did not start:\n{server.log()}")


@pytest.fixture
def live_server_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[LiveServer] = []

    def factory(seeds_dir: Path, config: Path, **kwargs: Any) -> LiveServer:
        server = start_server(seeds_dir, config, tmp_path, **kwargs)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture
def realworld(tmp_path: Path) -> Path:
    """The shared real-world corpus, read in place (never copied into the repo)."""
    if not REALWORLD.is_dir():
        pytest.skip("../shared/realworld is not beside the checkout")
    return REALWORLD


def realworld_and_samples(tmp: Path) -> Path:
    """A temp seed dir holding the real-world corpus and the bundled samples side by side
    (copied under `tmp`, never into the repo); skips if ../shared is not beside us."""
    if not REALWORLD.is_dir():
        pytest.skip("../shared/realworld is not beside the checkout")
    seeds = tmp / "seeds"
    shutil.copytree(REALWORLD, seeds / "realworld")
    shutil.copytree(SAMPLE_SEEDS, seeds / "bundled")
    return seeds


def copy_tree(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target
