"""The serving ceiling for P1: a bare WSGI callable under granian, with the settings
`feedservice serve` uses, answering every request with the same bytes.

    python benchmarks/bare_granian.py BODY_FILE CONTENT_TYPE PORT WORKERS

run.py measures it beside nginx and us, so the report shows how much of the gap
to nginx is granian's (and the machine's) and how much is ours.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

ENV_BODY = "BARE_GRANIAN_BODY"
ENV_TYPE = "BARE_GRANIAN_TYPE"


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", list(_HEADERS))
    return [_BODY]


if __name__ != "__main__":  # imported by a granian worker: the body comes from the parent
    with open(os.environ[ENV_BODY], "rb") as handle:
        _BODY = handle.read()
    _HEADERS = [("Content-Type", os.environ[ENV_TYPE]), ("Content-Length", str(len(_BODY)))]


def main() -> None:
    from pathlib import Path

    from granian import Granian
    from granian.http import HTTP1Settings

    body, content_type, port, workers = sys.argv[1:5]
    os.environ[ENV_BODY] = body
    os.environ[ENV_TYPE] = content_type
    Granian(
        "bare_granian:app",
        address="127.0.0.1",
        port=int(port),
        interface="wsgi",
        workers=int(workers),
        working_dir=Path(__file__).resolve().parent,
        http="1",
        http1_settings=HTTP1Settings(max_buffer_size=16384),
        blocking_threads=8,
        backpressure=128,
        backlog=2048,
        log_access=False,
    ).serve()


if __name__ == "__main__":
    main()
