"""The W3C Feed Validator (a checkout, not a package) over URLs of a live server.

Tests call `validate(urls)`: it skips the test when the checkout is absent
(FEEDVALIDATOR_DIR, default /work/tools/feedvalidator) or does not import under this
Python (it needs html5lib, which the project does not), and otherwise runs this file:

    python tests/w3c_validate.py VALIDATOR_SRC_DIR URL...

in a process of its own (the validator's modules patch sockets). Each line of its output
holds the URL, and the validator's errors and warnings (class name and message) as the
online validator filters them ("AA").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request  # noqa: F401 (the validator uses it without importing it, as demo.py does)
from pathlib import Path
from typing import Any

VALIDATOR = Path(os.environ.get("FEEDVALIDATOR_DIR", "/work/tools/feedvalidator"))


def validate(urls: list[str]) -> list[dict[str, Any]]:
    """One report per URL, in order: {"url", "errors": [[class, message]], "warnings"}."""
    import pytest

    source = VALIDATOR / "src"
    if not source.is_dir():
        pytest.skip(f"no W3C feed validator at {VALIDATOR}")
    probe = subprocess.run(
        [sys.executable, "-c", "import feedvalidator.validators"],
        cwd=source, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if probe.returncode != 0:
        reason = (probe.stderr.strip().splitlines() or ["?"])[-1]
        pytest.skip(f"the W3C feed validator does not import under this Python: {reason}")
    result = subprocess.run(
        [sys.executable, __file__, str(source), *urls],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert [report["url"] for report in reports] == urls
    return reports


def main() -> None:
    sys.path.insert(0, sys.argv[1])
    import feedvalidator
    from feedvalidator import compatibility
    from feedvalidator.formatter.text_plain import Formatter
    from feedvalidator.logging import Error, Warning

    for url in sys.argv[2:]:
        try:
            events = feedvalidator.validateURL(url, firstOccurrenceOnly=1)["loggedEvents"]
        except feedvalidator.logging.ValidationFailure as failure:
            events = [failure.event]
        events = compatibility.AA(events)
        found = {"url": url, "errors": [], "warnings": []}
        formatter = Formatter(events)
        for event in events:
            if isinstance(event, Error | Warning):
                kind = "errors" if isinstance(event, Error) else "warnings"
                found[kind].append([type(event).__name__, formatter.format(event)])
        print(json.dumps(found), flush=True)


if __name__ == "__main__":
    main()
