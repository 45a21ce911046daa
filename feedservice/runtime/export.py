"""`feedservice build --out DIR`: the whole site as static files, from the same store.

The build first brings the store in the state directory up to date (one reload),
unless a running service holds it: then it exports what that service committed.
Every URL (each feed page in every format, each HTML page, the OPML lists and the
stylesheet) is fetched through the same WSGI app `serve` runs, so the bytes are the
served bytes; each file gets a `.gz` sibling and its Last-Modified as mtime.

The build never deletes or replaces anything it did not write: it marks its output
with a `.feedservice-build` file and refuses a DIR that exists without it. A new
build goes into a temporary sibling and is moved into place with renames; if DIR is
a symlink, a new versioned directory is built beside it and the link is swapped.
URLs with a query map to files as `nginx_locations` says: `/topics/x.rss?page=N` →
`topics/x/page-N.rss`, `/topics/x/?page=N` → `topics/x/page-N.html`,
`/feeds.opml?format=rss` → `feeds-rss.opml`.
"""

from __future__ import annotations

import gzip
import os
import pwd
import shutil
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from feedservice.http import urls
from feedservice.http.app import create_app
from feedservice.runtime.loader import Loader
from feedservice.runtime.processes import Pool
from feedservice.runtime.server import ServeError, lock_state_dir
from feedservice.store.db import Store

MARKER = ".feedservice-build"
PARALLEL_TARGETS = 300  # below this, starting processes costs more than it saves
EXTRA_TYPES = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "json": "application/feed+json",
    "opml": "text/x-opml",
    "html": "text/html",
    "css": "text/css",
}
Target = tuple[str, str]  # (URL path with query, file path relative to the output root)


class BuildError(Exception):
    """The build cannot run or would overwrite what it did not write."""


@dataclass(frozen=True)
class BuildReport:
    out: Path
    files: int  # not counting .gz siblings
    articles: int
    seconds: float


def targets(store: Store) -> list[Target]:
    """Every URL of the static site, with the file that holds it."""
    found: list[Target] = [("/", "index.html"), ("/static/style.css", "static/style.css")]
    for which in ("feeds", "topics", "providers"):
        for fmt in urls.OPML_FORMATS:
            suffix = "-rss" if fmt == "rss" else ""
            found.append((urls.opml_path(which, fmt), f"{which}{suffix}.opml"))
    for feed in sorted(store.feeds(), key=lambda meta: (meta["kind"], meta["name"])):
        kind, name = feed["kind"], feed["name"]
        pages = max(1, -(-feed["count"] // feed["limit"]))
        for number in range(1, pages + 1):
            html = "index.html" if number == 1 else f"page-{number}.html"
            found.append((urls.page_path(kind, name, number), f"{kind}/{name}/{html}"))
            for fmt in urls.FORMATS:
                file = (
                    f"{kind}/{name}.{fmt}" if number == 1 else f"{kind}/{name}/page-{number}.{fmt}"
                )
                found.append((urls.feed_path(kind, name, fmt, number), file))
    return found


def build(
    config: Any, config_path: Path, required: bool, options: dict[str, Any], out: Path
) -> BuildReport:
    """Bring the store up to date (unless a service holds it) and write the site to `out`."""
    started = time.perf_counter()
    final = _destination(out)
    try:
        lock = lock_state_dir(config.state_dir)
    except ServeError:
        lock = None  # a running service keeps the store current: export what it committed
    if lock is not None:
        try:
            Loader(
                Store.in_dir(config.state_dir), config.seeds_dir, config_path,
                config_required=required, options=options, workers=config.workers,
            ).reload()  # fmt: skip
        finally:
            os.close(lock)
    store = Store.in_dir(config.state_dir, writable=False)
    generation = store.generation()
    if generation is None:
        raise BuildError(f"the store in {config.state_dir} holds no generation yet")
    todo = targets(store)
    work = final.parent / f".{final.name}.tmp-{os.getpid()}"
    work.mkdir(parents=True)
    try:
        (work / MARKER).write_text("written by feedservice build; safe to replace\n")
        chunks = [todo[start : start + 200] for start in range(0, len(todo), 200)]
        workers = config.workers if len(todo) >= PARALLEL_TARGETS else 1
        with Pool(workers) as pool:
            list(pool.map(write_chunk, [(config.state_dir, work, chunk) for chunk in chunks]))
        os.chmod(work, 0o755)
        _put_in_place(work, final, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return BuildReport(
        out, len(todo), generation.summary["articles"], time.perf_counter() - started
    )


def _destination(out: Path) -> Path:
    """Where this build goes; refuses anything that is not a previous build of ours."""
    if out.is_symlink():
        target = out.resolve()
        if target.exists() and not (target / MARKER).exists():
            raise BuildError(
                f"{out} points to {target}, which is not a feedservice build; not replaced"
            )
        return out.parent / f"{out.name}.{time.strftime('%Y%m%dT%H%M%S')}.{time.time_ns():x}"
    if out.exists() and not (out.is_dir() and ((out / MARKER).exists() or not any(out.iterdir()))):
        raise BuildError(f"{out} exists and is not a feedservice build; choose a new or empty path")
    return out


def _put_in_place(work: Path, final: Path, out: Path) -> None:
    if final != out:  # `out` is a symlink: build beside it, then swap the link atomically
        os.replace(work, final)
        previous = out.resolve()
        link = out.parent / f".{out.name}.link-{os.getpid()}"
        os.symlink(final.name, link)
        os.replace(link, out)
        if previous != final.resolve() and (previous / MARKER).exists():
            shutil.rmtree(previous, ignore_errors=True)
        return
    if not out.exists() or not any(out.iterdir()):
        os.replace(work, out)  # (a rename may replace an empty directory)
        return
    retired = out.parent / f".{out.name}.old-{os.getpid()}"
    os.replace(out, retired)  # a directory cannot be replaced by a rename: move ours aside
    os.replace(work, out)
    shutil.rmtree(retired, ignore_errors=True)


def write_chunk(state_dir: Path, root: Path, chunk: list[Target]) -> int:
    """Fetch each target through the served app and write it, its .gz and its mtime."""
    client = create_app(Store.in_dir(state_dir, writable=False)).test_client()
    for url, relative in chunk:
        response = client.get(url)
        if response.status_code != 200:
            raise BuildError(f"{url} answered {response.status_code}")
        body = response.get_data()
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        gz = path.with_name(path.name + ".gz")
        gz.write_bytes(gzip.compress(body, compresslevel=9, mtime=0))
        modified = response.headers.get("Last-Modified")
        if modified:
            stamp = parsedate_to_datetime(modified).timestamp()
            os.utime(path, (stamp, stamp))
            os.utime(gz, (stamp, stamp))
    return len(chunk)


def nginx_locations() -> str:
    """The nginx directives that serve a build like the live service (inside `server {}`)."""
    types = "\n".join(f"        {mime} {ext};" for ext, mime in EXTRA_TYPES.items())
    charset_types = " ".join(mime for mime in EXTRA_TYPES.values() if mime != "text/html")
    feed = f"^/({'|'.join(urls.KINDS)})/({urls.NAME})"
    formats = "|".join(urls.FORMATS)
    return f"""    types {{
{types}
    }}
    charset utf-8;
    charset_types {charset_types};
    gzip_static on;
    add_header Vary Accept-Encoding;
    add_header Access-Control-Allow-Origin *;
    add_header X-Content-Type-Options nosniff;
    location = /{MARKER} {{ return 404; }}
    location / {{
        if ($arg_page ~ "^([2-9]|[1-9][0-9]+)$") {{
            rewrite "{feed}\\.({formats})$" /$1/$2/page-$arg_page.$3 break;
            rewrite "{feed}/$" /$1/$2/page-$arg_page.html break;
        }}
        if ($arg_format = rss) {{
            rewrite "^/(feeds|topics|providers)\\.opml$" /$1-rss.opml break;
        }}
        index index.html;
        try_files $uri $uri/ =404;
    }}
"""


def nginx_conf(root: Path, port: int, workdir: Path, *, workers: int = 1) -> str:
    """A complete nginx config serving the build at `root` on 127.0.0.1:`port`; everything
    nginx writes goes under `workdir` (tests and benchmarks use it)."""
    for sub in ("log", "temp"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    user = pwd.getpwuid(os.geteuid()).pw_name
    return f"""worker_processes {workers};
user {user};
pid {workdir}/nginx.pid;
error_log {workdir}/log/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/temp/body;
    proxy_temp_path {workdir}/temp/proxy;
    fastcgi_temp_path {workdir}/temp/fastcgi;
    uwsgi_temp_path {workdir}/temp/uwsgi;
    scgi_temp_path {workdir}/temp/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{port};
        root {root};
{nginx_locations()}    }}
}}
"""
