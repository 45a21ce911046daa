"""WebSub publishing: after a committed reload, tell the hub which feeds changed.

The loader commits a generation before it pings, so every worker already serves the
new items when the hub comes to fetch them. One daemon thread POSTs
`hub.mode=publish` with one `hub.url` per request and a short timeout; a slow,
failing or absent hub only writes log lines and never delays a reload or a response.
Only the fixed feeds (topic and configured) are announced.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from feedservice.http import urls

log = logging.getLogger("feedservice.websub")
PUBLISH_TIMEOUT = 5.0  # seconds per POST; a hub answers a publish ping at once
MAX_PENDING = 10_000  # queued feed URLs; more means the hub is far behind: drop, log
FORM_TYPE = "application/x-www-form-urlencoded"


def feed_urls(site: dict[str, Any], feed_key: str) -> list[str]:
    """Page-1 URLs of one feed in every format (JSON Feed advertises the hub too)."""
    kind, name = feed_key.split("/", 1)
    return [site["base_url"] + urls.feed_path(kind, name, fmt) for fmt in urls.FORMATS]


class WebSubPublisher:
    """A loader listener: `publisher(reloaded)` queues the changed feeds' URLs."""

    def __init__(self, timeout: float = PUBLISH_TIMEOUT) -> None:
        self.timeout = timeout
        self.sent = 0  # successful publishes, for logs and tests
        self.failed = 0
        self._pending: dict[tuple[str, str], None] = {}  # (hub, url), in order, once each
        self._in_flight = 0
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None

    def __call__(self, reloaded: Any) -> None:
        hub = reloaded.site.get("websub_hub")
        if hub and reloaded.changed_feeds:
            self.enqueue(
                hub, [u for key in reloaded.changed_feeds for u in feed_urls(reloaded.site, key)]
            )

    def enqueue(self, hub: str, feed_urls: list[str]) -> None:
        with self._condition:
            for url in feed_urls:
                if len(self._pending) >= MAX_PENDING:
                    log.error("websub: %d publishes pending; dropping the rest", MAX_PENDING)
                    break
                self._pending[(hub, url)] = None
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="websub", daemon=True)
                self._thread.start()
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._pending:
                    self._condition.wait()
                batch = list(self._pending)
                self._pending.clear()
                self._in_flight = len(batch)
            failures = [
                f"{url}: {problem}" for hub, url in batch if (problem := self.publish(hub, url))
            ]
            if failures:
                first = failures[0]
                log.error(
                    "websub: %d of %d publishes failed; first: %s", len(failures), len(batch), first
                )
            else:
                log.info("websub: published %d feed URLs to %s", len(batch), batch[0][0])
            with self._condition:
                self.sent += len(batch) - len(failures)
                self.failed += len(failures)
                self._in_flight = 0
                self._condition.notify_all()

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
        except Exception as error:  # a garbled answer: never let the publisher die
            return f"{type(error).__name__}: {error}"

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is queued or in flight (tests and shutdown)."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._pending or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(min(remaining, 0.05))
        return True
