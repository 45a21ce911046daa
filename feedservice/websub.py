"""WebSub publishing: after a reload, tell the hub which feeds changed.

A reload listener compares the items (identity and revision, every page) of
each feed in the previous and current snapshot and queues the URLs of the
changed feeds. One daemon thread per process POSTs `hub.mode=publish` with one
`hub.url` per request, with a short timeout; a slow, failing or absent hub only
produces log lines and never delays a reload or a response.

Several granian workers each reload the same seeds, so they elect one publisher
with a non-blocking `flock` on a lock file named after the server's identity;
that worker waits one reload interval before publishing, so that every worker
already serves the new items when the hub comes to fetch them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO, TYPE_CHECKING

from feedservice.catalog import Catalog, Feed
from feedservice.feeds import FORMATS
from feedservice.feeds.page import FeedPage

if TYPE_CHECKING:
    from feedservice.service import Service, Snapshot

log = logging.getLogger("feedservice.websub")

PUBLISH_TIMEOUT = 5.0  # seconds per POST; a hub answers a publish ping at once
MAX_PENDING = 10_000  # queued feed URLs; more means the hub is far behind: drop, log
FORM_TYPE = "application/x-www-form-urlencoded"


def changed_feeds(previous: Catalog, current: Catalog) -> list[Feed]:
    """Feeds of `current` whose items differ from `previous` (new feeds count as changed).

    An article's revision digests every published value including its identity, so
    equal revision sequences mean a reader sees the same items in the same order.
    """
    if previous is current:
        return []
    changed = []
    for key, feed in current.feeds.items():
        old = previous.feeds.get(key)
        if old is None or not _same_items(old, feed):
            changed.append(feed)
    return changed


def _same_items(old: Feed, new: Feed) -> bool:
    if old.items is new.items:
        return True
    if len(old.items) != len(new.items):
        return False
    return all(
        a is b or a.revision == b.revision for a, b in zip(old.items, new.items, strict=True)
    )


def feed_urls(feed: Feed, catalog: Catalog) -> list[str]:
    """Page-1 URLs of one feed in every format (JSON Feed advertises the hub too)."""
    page = FeedPage(feed, 1, catalog.config)
    return [page.url(fmt) for fmt in FORMATS]


class Leadership:
    """One publisher among sibling worker processes: whoever holds the flock."""

    def __init__(self, lock_path: Path | None) -> None:
        self.lock_path = lock_path
        self._handle: IO[bytes] | None = None

    def held(self) -> bool:
        if self.lock_path is None or self._handle is not None:
            return True
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: one process, always leader
            return True
        handle = self.lock_path.open("ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._handle = handle  # kept open for the life of the process
        return True


class WebSubPublisher:
    """A `service.listeners` entry: `publisher(previous_snapshot, current_snapshot)`."""

    def __init__(
        self,
        *,
        timeout: float = PUBLISH_TIMEOUT,
        wait_for_peers: bool = False,
        lock_path: Path | None = None,
    ) -> None:
        self.timeout = timeout
        self.wait_for_peers = wait_for_peers
        self.leadership = Leadership(lock_path)
        self.sent = 0  # successful publishes, for logs and tests
        self.failed = 0
        self._pending: dict[tuple[str, str], float] = {}  # (hub, url) → when it may go
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._in_flight = 0

    @classmethod
    def for_service(cls, service: Service, workers: int = 1) -> WebSubPublisher:
        """The publisher a server process registers; elects one among `workers` siblings."""
        if workers <= 1:
            return cls()
        key = f"{os.getppid()}\x1f{service.seeds_dir.resolve()}\x1f{service.config_path}"
        digest = hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=8)
        lock = Path(tempfile.gettempdir()) / f"feedservice-websub-{digest.hexdigest()}.lock"
        return cls(wait_for_peers=True, lock_path=lock)

    def __call__(self, previous: Snapshot, current: Snapshot) -> None:
        hub = current.config.websub_hub
        if not hub or previous.catalog is current.catalog:
            return
        feeds = changed_feeds(previous.catalog, current.catalog)
        if not feeds or not self.leadership.held():
            return
        delay = current.config.reload_interval + 1 if self.wait_for_peers else 0
        urls = [url for feed in feeds for url in feed_urls(feed, current.catalog)]
        self.enqueue(hub, urls, delay)

    def enqueue(self, hub: str, urls: list[str], delay: float = 0) -> None:
        due = time.monotonic() + delay
        with self._condition:
            for url in urls:
                if len(self._pending) >= MAX_PENDING:
                    log.error("websub: %d publishes pending; dropping the rest", MAX_PENDING)
                    break
                self._pending.setdefault((hub, url), due)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="websub-publisher", daemon=True
                )
                self._thread.start()
            self._condition.notify()

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            failures: list[str] = []
            for hub, url in batch:
                problem = self.publish(hub, url)
                if problem:
                    failures.append(f"{url}: {problem}")
            if failures:
                log.error(
                    "websub: %d of %d publishes to the hub failed; first: %s",
                    len(failures),
                    len(batch),
                    failures[0],
                )
            else:
                log.info("websub: published %d feed URLs to %s", len(batch), batch[0][0])
            with self._condition:
                self.sent += len(batch) - len(failures)
                self.failed += len(failures)
                self._in_flight = 0
                self._condition.notify_all()

    def _next_batch(self) -> list[tuple[str, str]]:
        """Wait until something is due, then take everything that is."""
        with self._condition:
            while True:
                now = time.monotonic()
                due = [key for key, when in self._pending.items() if when <= now]
                if due:
                    for key in due:
                        del self._pending[key]
                    self._in_flight = len(due)
                    return due
                wait = min(self._pending.values()) - now if self._pending else None
                self._condition.wait(wait)

    def publish(self, hub: str, url: str) -> str | None:
        """POST one publish ping; None on a 2xx answer, else what went wrong."""
        body = urllib.parse.urlencode({"hub.mode": "publish", "hub.url": url}).encode()
        request = urllib.request.Request(
            hub, data=body, method="POST", headers={"Content-Type": FORM_TYPE}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read(4096)
                return None
        except urllib.error.HTTPError as error:
            return f"HTTP {error.code}"
        except (OSError, ValueError) as error:  # refused, timed out, bad URL
            return str(getattr(error, "reason", None) or error)
        except Exception as error:  # e.g. a garbled answer: never let the publisher die
            return f"{type(error).__name__}: {error}"

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is queued or in flight (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._pending or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(min(remaining, 0.05))
        return True
