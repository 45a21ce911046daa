"""Churn under load: a real server keeps serving whole, correct feeds while its seed
directory is added to, edited, deleted from and corrupted for more than 20 seconds.

Client threads (bounded in count, rate and time) poll feeds with and without gzip and
with conditional requests. Every response is checked: no 5xx, the body parses as the
format it claims, the ETag is the digest of exactly that body (so no response mixes two
generations), and every article that stayed valid throughout is in every response of
its feeds.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from conftest import start_server, write_config
from consumers import read_feed

CHURN_SECONDS = 21.0
CLIENTS = 4
MAX_REQUESTS_PER_CLIENT = 4000
STABLE = 24
FORMATS = ("rss", "atom", "json")
pytestmark = pytest.mark.timeout(150)


def seed(title: str, link: str, date: str, topics: list[str]) -> bytes:
    fields = {
        "title": title,
        "webUrl": link,
        "publishedDateTime": date,
        "topics": topics,
        "excerpt": f"About {title}.",
        "secured": "SEKRIT-churn",
    }
    return ("---\n" + yaml.safe_dump(fields, sort_keys=False) + "---\nbody\n").encode()


BAD_PAYLOADS = [
    b"",
    b"---\ntitle: half a fi",
    b"---\ntitle: [unclosed\n---\n",
    b"\xff\xfe-\x00-\x00-\x00",
    b"---\ntopics: " + b"[" * 100_000 + b"\n---\n",
    b"---\ntopics:\n  " + b"- " * 100_000 + b"x\n---\n",
    b"---\ntitle: x\nwebUrl: javascript:alert(1)\npublishedDateTime: 2021-01-01\n---\n",
    b"---\ntitle: x\nwebUrl: https://churn.example/x\npublishedDateTime: 2021-13-45\n---\n",
    os.urandom(2048),
]


@dataclass
class Tally:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, message: str) -> None:
        with self.lock:
            if len(self.failures) < 50:
                self.failures.append(message)


def etag_of(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def client(
    port: int, stable: dict[str, set[str]], stop: threading.Event, tally: Tally, number: int
) -> None:
    rng = random.Random(number)
    seen: dict[str, str] = {}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(MAX_REQUESTS_PER_CLIENT):
        if stop.is_set():
            break
        feed = rng.choice(sorted(stable))
        fmt = rng.choice(FORMATS)
        path = f"{feed}.{fmt}"
        use_gzip = rng.random() < 0.5
        headers = {"Accept-Encoding": "gzip"} if use_gzip else {}
        if path in seen and rng.random() < 0.3:
            headers["If-None-Match"] = seen[path]
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as error:
            tally.fail(f"{path}: connection error {error!r}")
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            continue
        with tally.lock:
            tally.requests += 1
            tally.statuses[response.status] += 1
        etag = (response.getheader("ETag") or "").strip('"')
        if response.status == 304:
            sent = headers.get("If-None-Match", "").strip('"')
            if not sent or etag.removesuffix("-gz") != sent.removesuffix("-gz"):
                tally.fail(f"{path}: 304 with ETag {etag!r} for If-None-Match {sent!r}")
            continue
        if response.status != 200:
            tally.fail(f"{path}: status {response.status}")
            continue
        gzipped = response.getheader("Content-Encoding") == "gzip"
        if gzipped != use_gzip:
            tally.fail(f"{path}: Content-Encoding {gzipped} for Accept-Encoding {use_gzip}")
        try:
            body = gzip.decompress(raw) if gzipped else raw
        except (OSError, EOFError) as error:
            tally.fail(f"{path}: broken gzip {error!r}")
            continue
        expected_etag = etag_of(body) + ("-gz" if gzipped else "")
        if etag != expected_etag:
            tally.fail(f"{path}: ETag {etag} does not match its body ({expected_etag})")
        try:
            _, items = read_feed(body, fmt)
        except Exception as error:
            tally.fail(f"{path}: unparsable body: {error!r}")
            continue
        missing = stable[feed] - {item.link for item in items}
        if missing:
            tally.fail(f"{path}: lost stable articles {sorted(missing)[:3]}")
        seen[path] = response.getheader("ETag") or ""
        stop.wait(0.01)
    connection.close()


def churn(root: Path, stop: threading.Event, counts: Counter[str]) -> None:
    rng = random.Random(7)
    directory = root / "churn"
    directory.mkdir(exist_ok=True)
    serial = 0
    while not stop.is_set():
        existing = sorted(path for path in directory.rglob("*.md") if path.is_file())
        operation = rng.choice(
            ["add", "add", "edit", "edit", "delete", "corrupt", "replace", "rename", "slow-write"]
        )
        if operation in {"edit", "delete", "corrupt", "rename"} and not existing:
            operation = "add"
        serial += 1
        topics = rng.sample(["AI", "Robots", "Churn", "Machine Learning"], 2)
        date = f"2022-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T10:00:00Z"
        body = seed(f"Churn {serial}", f"https://churn.example/{serial}", date, topics)
        try:
            if operation == "add":
                sub = directory / f"d{serial % 3}" if serial % 4 == 0 else directory
                sub.mkdir(exist_ok=True)
                (sub / f"c{serial}.md").write_bytes(body)
            elif operation == "edit":
                rng.choice(existing).write_bytes(body)
            elif operation == "delete":
                rng.choice(existing).unlink()
            elif operation == "corrupt":
                rng.choice(existing).write_bytes(rng.choice(BAD_PAYLOADS))
            elif operation == "replace":  # how careful tools save: temp file + rename
                target = rng.choice(existing) if existing else directory / f"c{serial}.md"
                temp = directory / f".tmp{serial}"
                temp.write_bytes(body)
                os.replace(temp, target)
            elif operation == "rename":
                rng.choice(existing).rename(directory / f"renamed{serial}.md")
            else:  # a slow editor: the reloader may read the file half written
                with (directory / f"slow{serial}.md").open("wb") as handle:
                    handle.write(body[: len(body) // 2])
                    handle.flush()
                    stop.wait(0.3)
                    handle.write(body[len(body) // 2 :])
        except FileNotFoundError:
            pass  # a file we picked was renamed or deleted by an earlier step
        counts[operation] += 1
        stop.wait(rng.uniform(0.01, 0.08))


def test_churn_under_load(tmp_path: Path) -> None:
    root = tmp_path / "seeds"
    root.mkdir()
    stable: dict[str, set[str]] = {
        "/feeds/all": set(),
        "/topics/ai": set(),
        "/topics/robots": set(),
        "/feeds/ml": set(),
    }
    for n in range(STABLE):
        topics = [["AI"], ["Robots"], ["AI", "Machine Learning"]][n % 3]
        link = f"https://stable.example/{n}"
        (root / f"stable-{n:02d}.md").write_bytes(
            seed(f"Stable {n}", link, f"2021-{n % 12 + 1:02d}-10T10:00:00Z", topics)
        )
        stable["/feeds/all"].add(link)
        for topic in topics:
            key = {"AI": "/topics/ai", "Robots": "/topics/robots", "Machine Learning": "/feeds/ml"}[
                topic
            ]
            stable[key].add(link)
    config = write_config(
        tmp_path / "feeds.yaml",
        title="Churn",
        base_url="http://feeds.test",
        reload_interval=1,
        topic_limit=1000,
        feeds=[{"name": "ml", "title": "ML", "topics": ["Machine Learning"], "limit": 1000}],
    )
    server = start_server(
        root,
        config,
        tmp_path,
        workers=2,
        wait_articles=STABLE,
    )
    try:
        generation_before = server.health()["generation"]
        stop = threading.Event()
        tally = Tally()
        counts: Counter[str] = Counter()
        threads = [
            threading.Thread(target=client, args=(server.port, stable, stop, tally, n))
            for n in range(CLIENTS)
        ]
        writer = threading.Thread(target=churn, args=(root, stop, counts))
        for thread in [*threads, writer]:
            thread.start()
        started = time.monotonic()
        stop.wait(CHURN_SECONDS)
        stop.set()
        for thread in [*threads, writer]:
            thread.join(timeout=30)
        elapsed = time.monotonic() - started
        health = server.health()
        alive = server.process.poll() is None
    finally:
        server.stop()
    assert elapsed >= 20
    assert alive, "the server died"
    assert not tally.failures, "\n".join(tally.failures)
    assert not [status for status in tally.statuses if status >= 500], tally.statuses
    assert tally.requests >= 200, tally.requests  # the load really ran
    assert tally.statuses[304] > 0
    assert sum(counts.values()) >= 100, counts  # and so did the churn
    assert {"add", "edit", "delete", "corrupt", "rename", "replace", "slow-write"} <= set(counts)
    assert health["generation"] >= generation_before + 5, health  # reloads happened meanwhile
    log = server.log()
    assert "Traceback" not in log
    assert "SEKRIT" not in log and "secured" not in log
