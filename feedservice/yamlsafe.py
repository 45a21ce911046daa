"""The one YAML loader the service uses: safe, and libyaml-backed when available.

PyYAML's safe constructors raise plain ValueError for scalars that look like a
number or date but cannot be one (`2021-13-45`, a 5000-digit integer), and
turn a long sexagesimal integer (`1:1:1:...`) into seconds of big-number work.
Such scalars stay text here, so the field check that reads them names the key.

`load` is the entry point: libyaml parses and composes the node tree as always,
then one tight function turns the usual nodes (plain mappings, sequences, text,
numbers, booleans, nulls, dates) into Python values. Anything else, or any
error, is left to the standard `yaml.load(text, Loader=SafeLoader)`, so values
and errors are exactly what that gives.
"""

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

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


# --- the fast path -------------------------------------------------------------------------

_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
# Scalar tags whose constructors give an immutable value that depends only on the
# scalar's text, so one value can be built once and shared.
_SCALAR_TAGS = tuple(
    f"tag:yaml.org,2002:{name}" for name in ("int", "float", "bool", "null", "timestamp")
)
_CACHED_CHARS = 64  # memoise resolving and constructing scalars up to this long
_CACHE_ENTRIES = 20_000  # per cache; emptied when full, so memory stays bounded

# PyYAML picks a plain scalar's implicit resolvers by its first character ('' when empty);
# one that starts with any other character is text. (Only without wildcard resolvers,
# registered under None: SafeLoader has none.)
_RESOLVED_FIRST = frozenset(SafeLoader.yaml_implicit_resolvers)
_TEXT_BY_FIRST_CHARACTER = None not in _RESOLVED_FIRST
# The usual form of a YAML timestamp, built here exactly as PyYAML's constructor builds
# it (construct_yaml_timestamp, ~5x the time); every other form goes to that constructor.
_ISO_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,6}))?(?:(Z)|([-+])([0-9]{2}):([0-9]{2}))"
)
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_zones: dict[str, timezone] = {}  # "+05:30" -> its timezone (few distinct offsets)

_tags: dict[str, str] = {}  # plain scalar text -> its resolved tag
_values: dict[str, dict[str, Any]] = {tag: {} for tag in _SCALAR_TAGS}  # tag -> text -> value


class _Unusual(Exception):
    """The document holds something the fast path leaves to the standard loader."""


class _FastLoader(SafeLoader):
    """SafeLoader whose tag resolution is memoised.

    The resolved tag of a plain scalar depends only on its text as long as the
    loader has no path resolvers (SafeLoader has none; `load` checks that before
    every use) and no implicit resolver is added after import (none is), so the
    per-node resolver bookkeeping can be skipped too.
    """

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is ScalarNode:
            if not implicit[0]:  # not plain (quoted, say): no implicit resolver applies
                return _STR
            if _TEXT_BY_FIRST_CHARACTER and value[:1] not in _RESOLVED_FIRST:
                return _STR
            tag = _tags.get(value)
            if tag is None:
                tag = SafeLoader.resolve(self, kind, value, implicit)
                if len(value) <= _CACHED_CHARS:
                    if len(_tags) >= _CACHE_ENTRIES:
                        _tags.clear()
                    _tags[value] = tag
            return tag
        return _SEQ if kind is SequenceNode else _MAP

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass


_CONSTRUCTORS = {tag: SafeLoader.yaml_constructors[tag] for tag in _SCALAR_TAGS}


def _scalar(loader: _FastLoader, node: ScalarNode) -> Any:
    tag = node.tag
    if tag == _STR:
        return node.value
    cache = _values.get(tag)
    if cache is None:
        raise _Unusual(tag)  # !!binary, a custom tag, `<<`, `=`, ...
    text = node.value
    try:
        return cache[text]
    except KeyError:
        pass
    value = _iso_timestamp(text) if tag == _TIMESTAMP else None
    if value is None:
        value = _CONSTRUCTORS[tag](loader, node)
    if len(text) <= _CACHED_CHARS:
        if len(cache) >= _CACHE_ENTRIES:
            cache.clear()
        cache[text] = value
    return value


def _iso_timestamp(text: str) -> datetime | None:
    """`construct_yaml_timestamp`'s value for `2021-11-12T05:20:00.5+05:30` (the fraction
    optional, `Z` for UTC); None for any other form or an impossible date."""
    match = _ISO_TIMESTAMP.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, utc, sign, tz_hour, tz_minute = match.groups()
    zone: timezone = UTC
    if utc is None:
        offset = text[-6:]
        found = _zones.get(offset)
        if found is None:
            delta = timedelta(hours=int(tz_hour), minutes=int(tz_minute))
            try:
                found = timezone(-delta if sign == "-" else delta)
            except ValueError:  # 24 hours or more: PyYAML's constructor decides
                return None
            _zones[offset] = found
        zone = found
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int(fraction.ljust(6, "0")) if fraction else 0,
            tzinfo=zone,
        )
    except ValueError:  # month 13, second 60, ...: PyYAML's constructor decides
        return None


def _build(loader: _FastLoader, node: Any) -> Any:
    """The Python value of a node tree without aliases; _Unusual if it is not plain."""
    kind = node.__class__
    if kind is MappingNode:
        if node.tag != _MAP:
            raise _Unusual(node.tag)  # !!set, !!omap, !!pairs, a custom tag
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.__class__ is not ScalarNode:
                raise _Unusual("a collection as a key")  # unhashable: the standard error
            key = key_node.value if key_node.tag == _STR else _scalar(loader, key_node)
            if value_node.__class__ is ScalarNode:
                if value_node.tag == _STR:
                    mapping[key] = value_node.value
                else:
                    mapping[key] = _scalar(loader, value_node)
            else:
                mapping[key] = _build(loader, value_node)
        return mapping
    if kind is SequenceNode:
        if node.tag != _SEQ:
            raise _Unusual(node.tag)
        return [_build(loader, item) for item in node.value]
    if kind is ScalarNode:
        return _scalar(loader, node)
    raise _Unusual(kind)  # pragma: no cover - libyaml composes only these three


def load(text: str) -> Any:
    """`yaml.load(text, Loader=SafeLoader)` in about half the time: same value, same errors."""
    if "*" in text or SafeLoader.yaml_path_resolvers:
        # An alias makes nodes shared (or cyclic): a tree walk could copy them
        # exponentially often or never end. The standard constructor handles those.
        return yaml.load(text, Loader=SafeLoader)
    try:
        loader = _FastLoader(text)
        try:
            node = loader.get_single_node()
            return None if node is None else _build(loader, node)
        finally:
            loader.dispose()
    except Exception:  # unusual content, or an error: the standard loader decides
        return yaml.load(text, Loader=SafeLoader)


__all__ = ["SafeLoader", "load"]
