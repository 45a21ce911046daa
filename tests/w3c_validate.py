"""Run the W3C Feed Validator (a checkout, not a package) over URLs; one JSON line each.

python tests/w3c_validate.py VALIDATOR_SRC_DIR URL...

It runs in a process of its own (its modules patch sockets). Each line holds the URL,
and the validator's errors and warnings (class name and message) as the online
validator filters them ("AA").
"""

from __future__ import annotations

import json
import sys
import urllib.request  # noqa: F401 (the validator uses it without importing it, as demo.py does)


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
