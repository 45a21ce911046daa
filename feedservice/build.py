"""`feedservice build --out DIR`: the whole site as static files, for any static host or CDN.

Every feed page in every format, every HTML page, both OPML lists and the
stylesheet are fetched through the Flask app itself (so the bytes are exactly
what `serve` answers), written with a `.gz` sibling for gzip_static-style
serving, and stamped with their Last-Modified time. Output is deterministic:
the same seeds and config give byte-identical files and mtimes.

The tree is written into a temporary sibling directory and moved into place
with a rename, so a server never sees half a build. If DIR is a symlink, a new
versioned directory is built beside it and the symlink is replaced atomically
(the zero-downtime layout); otherwise the old directory is renamed away first.

URLs with a query map to files as follows (see `nginx_locations`):
`/topics/x.rss?page=N` → `topics/x/page-N.rss`, `/topics/x/?page=N` →
`topics/x/page-N.html`, `/feeds.opml?format=rss` → `feeds-rss.opml`.
"""

from __future__ import annotations

import gzip
import multiprocessing
import os
import pwd
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from feedservice import progress
from feedservice.feeds import FORMATS
from feedservice.service import Service

PARALLEL_TARGETS = 300  # below this, forking workers costs more than it saves
EXTRA_TYPES = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "json": "application/feed+json",
    "opml": "text/x-opml",
    "html": "text/html",
    "css": "text/css",
}

Target = tuple[str, str]  # (URL path with query, file path relative to the output root)


@dataclass(frozen=True)
class BuildReport:
    out: Path
    files: int  # files written, not counting .gz siblings
    articles: int
    seconds: float


def targets(service: Service) -> list[Target]:
    """Every URL the static site serves, with the file that holds it."""
    catalog = service.snapshot.catalog
    found: list[Target] = [("/", "index.html"), ("/static/style.css", "static/style.css")]
    for which in ("feeds", "topics"):
        found.append((f"/{which}.opml", f"{which}.opml"))
        found.append((f"/{which}.opml?format=rss", f"{which}-rss.opml"))
    for (kind, name), feed in sorted(catalog.feeds.items()):
        found.append((f"/{kind}/{name}/", f"{kind}/{name}/index.html"))
        for fmt in FORMATS:
            found.append((f"/{kind}/{name}.{fmt}", f"{kind}/{name}.{fmt}"))
        for number in range(2, feed.page_count + 1):
            found.append((f"/{kind}/{name}/?page={number}", f"{kind}/{name}/page-{number}.html"))
            for fmt in FORMATS:
                found.append(
                    (f"/{kind}/{name}.{fmt}?page={number}", f"{kind}/{name}/page-{number}.{fmt}")
                )
    return found


def build(
    seeds: str | os.PathLike[str],
    config: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    workers: int | None = None,
) -> BuildReport:
    """Write the site to `out` atomically. Raises ConfigError for a bad config."""
    started = time.perf_counter()
    service = Service(seeds, config, store=progress.seed_store(seeds))  # a bar on a terminal
    out = Path(out)
    if out.is_symlink():
        final = out.parent / f"{out.name}.{time.strftime('%Y%m%dT%H%M%S')}.{time.time_ns():x}"
    else:
        final = out
    work = final.parent / f".{final.name}.tmp-{os.getpid()}-{threading.get_ident()}"
    work.mkdir(parents=True)
    try:
        todo = targets(service)
        _write_all(service, todo, work, workers or os.cpu_count() or 1)
        os.chmod(work, 0o755)
        _put_in_place(work, final, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return BuildReport(
        out, len(todo), len(service.snapshot.catalog.articles), time.perf_counter() - started
    )


def _put_in_place(work: Path, final: Path, out: Path) -> None:
    if final != out:  # `out` is a symlink: build beside it, then swap the link atomically
        os.replace(work, final)
        previous = out.resolve()
        link = out.parent / f".{out.name}.link-{os.getpid()}"
        os.symlink(final.name, link)
        os.replace(link, out)
        if previous != final.resolve() and previous.parent == final.parent:
            shutil.rmtree(previous, ignore_errors=True)
        return
    if not out.exists():
        os.replace(work, out)
        return
    retired = out.parent / f".{out.name}.old-{os.getpid()}"
    os.replace(out, retired)  # a directory cannot be replaced by rename: move it aside
    os.replace(work, out)
    shutil.rmtree(retired, ignore_errors=True)


_STATE: dict[str, Any] = {}  # what forked build workers inherit


def _write_all(service: Service, todo: list[Target], root: Path, workers: int) -> None:
    _STATE.update(service=service, root=root, client=None)
    try:
        if len(todo) < PARALLEL_TARGETS or workers < 2:
            _write_chunk(todo)
            return
        size = max(20, len(todo) // (workers * 8))
        chunks = [todo[start : start + size] for start in range(0, len(todo), size)]
        try:
            context = multiprocessing.get_context("fork")
            with context.Pool(workers) as pool, progress.counter(len(todo), desc="writing") as done:
                for written in pool.imap_unordered(_write_chunk, chunks):
                    done(written)
        except (OSError, AssertionError, ValueError):  # no processes here: do it serially
            _write_chunk(todo)
    finally:
        _STATE.clear()


def _write_chunk(chunk: list[Target]) -> int:
    from feedservice.web import create_app

    client = _STATE.get("client")
    if client is None:
        client = _STATE["client"] = create_app(_STATE["service"]).test_client()
    root: Path = _STATE["root"]
    for url, relative in chunk:
        response = client.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"build: {url} answered {response.status_code}")
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
    """The nginx directives that serve a build like the live service (inside `server {}`).

    Content types for our extensions, gzip_static for the `.gz` siblings, and
    the query-to-file mapping for paging and OPML formats.
    """
    types = "\n".join(f"        {mime} {ext};" for ext, mime in EXTRA_TYPES.items())
    charset_types = " ".join(mime for mime in EXTRA_TYPES.values() if mime != "text/html")
    feed = "^/(topics|feeds)/([a-z0-9][a-z0-9_-]*)"
    return f"""    types {{
{types}
    }}
    charset utf-8;
    charset_types {charset_types};
    gzip_static on;
    add_header Vary Accept-Encoding;
    add_header Access-Control-Allow-Origin *;
    add_header X-Content-Type-Options nosniff;
    location / {{
        if ($arg_page ~ "^([2-9]|[1-9][0-9]+)$") {{
            rewrite "{feed}\\.(rss|atom|json)$" /$1/$2/page-$arg_page.$3 break;
            rewrite "{feed}/$" /$1/$2/page-$arg_page.html break;
        }}
        if ($arg_format = rss) {{
            rewrite "^/(feeds|topics)\\.opml$" /$1-rss.opml break;
        }}
        index index.html;
        try_files $uri $uri/ =404;
    }}
"""


def add_parser(commands: Any, common: Any) -> None:
    """The `build` subcommand (same --seeds/--config options and defaults as `serve`)."""
    parser = commands.add_parser(
        "build", help="write every feed, page and OPML file to a directory"
    )
    common(parser)
    parser.add_argument("--out", type=Path, required=True, help="output directory (replaced)")


def run(args: Any) -> int:
    from feedservice.config import ConfigError

    if not args.seeds.is_dir():
        print(f"feedservice: seed directory not found: {args.seeds}", file=sys.stderr)
        return 2
    try:
        report = build(args.seeds, args.config, args.out)
    except ConfigError as error:
        print(f"feedservice: invalid config: {error}", file=sys.stderr)
        return 2
    print(
        f"built {report.files} files (+ .gz) for {report.articles} articles "
        f"into {report.out} in {report.seconds:.1f} s"
    )
    return 0


def nginx_conf(root: Path, port: int, workdir: Path, *, workers: int = 1) -> str:
    """A complete standalone nginx config serving the build at `root` on 127.0.0.1:`port`.

    Everything nginx writes (pid, logs, temp files) goes under `workdir`; used by
    the tests and the benchmark, and a starting point for a real deployment.
    """
    for sub in ("log", "temp"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    user = pwd.getpwuid(os.geteuid()).pw_name if hasattr(os, "geteuid") else "nobody"
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
