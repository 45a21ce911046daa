"""The one YAML loader the service uses: safe, and libyaml-backed when available.

PyYAML's safe constructors raise plain ValueError for scalars that look like a
number or date but cannot be one (`2021-13-45`, a 5000-digit integer), and
turn a long sexagesimal integer (`1:1:1:...`) into seconds of big-number work.
Such scalars stay text here, so the field check that reads them names the key.
"""

from collections.abc import Callable
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

try:  # libyaml is ~8x faster; the pure-Python SafeLoader is the same safe subset.
    _Base: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - only on PyYAML builds without libyaml
    _Base = yaml.SafeLoader

MAX_NUMBER_CHARS = 100  # longer "numbers" and "dates" are kept as text


class SafeLoader(_Base):  # type: ignore[misc, valid-type]
    """yaml's safe loader, except that an unrepresentable number or date stays text."""


def _scalar_or_text(construct: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def constructor(loader: Any, node: Any) -> Any:
        if isinstance(node.value, str) and len(node.value) > MAX_NUMBER_CHARS:
            return loader.construct_scalar(node)
        try:
            return construct(loader, node)
        except (ValueError, OverflowError):
            return loader.construct_scalar(node)

    return constructor


for _tag, _construct in (
    ("int", SafeConstructor.construct_yaml_int),
    ("float", SafeConstructor.construct_yaml_float),
    ("timestamp", SafeConstructor.construct_yaml_timestamp),
):
    SafeLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _scalar_or_text(_construct))

__all__ = ["SafeLoader"]
