"""Loading YAML safely, and fast for the plain documents seed files are.

PyYAML's `CSafeLoader` parses in C but builds every value in Python through its
generic constructor: about half the time of a load. For a plain document (mappings,
sequences and scalars; no anchors, aliases or custom tags) `load` lets libyaml compose
the node tree as always, then builds the values itself, calling PyYAML's own safe
constructors for every scalar that is not a string. The result equals
`yaml.load(text, SafeLoader)`; anything unusual (an alias, a custom tag, ...), and
every error, is left to that.
The resolved tag of a plain scalar depends on its text only, so it is memoised.
(benchmarks/inproc.py `shortcuts` measures what each part saves on a cold load.)
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

MAX_NUMBER_CHARS = 100  # longer "numbers" and "dates" stay text


class SafeLoader(yaml.CSafeLoader):  # type: ignore[misc]
    """libyaml's safe loader, except that an unrepresentable number or date (`2021-13-45`,
    a 5,000-digit integer, a long `1:1:1:...`) stays text, so the field check names it."""


def _scalar_or_text(construct: Any) -> Any:
    def constructor(loader: Any, node: Any) -> Any:
        if isinstance(node.value, str) and len(node.value) > MAX_NUMBER_CHARS:
            return loader.construct_scalar(node)
        try:
            return construct(loader, node)
        except (ValueError, OverflowError):
            return loader.construct_scalar(node)

    return constructor


for _tag in ("int", "float", "timestamp"):
    SafeLoader.add_constructor(
        f"tag:yaml.org,2002:{_tag}",
        _scalar_or_text(getattr(SafeConstructor, f"construct_yaml_{_tag}")),
    )


_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_CONSTRUCTORS = {
    f"tag:yaml.org,2002:{name}": SafeLoader.yaml_constructors[f"tag:yaml.org,2002:{name}"]
    for name in ("int", "float", "bool", "null", "timestamp")
}
# PyYAML picks a plain scalar's implicit resolvers by its first character: one that
# starts with any other character is a string (SafeLoader has no wildcard resolver).
_RESOLVED_FIRST = frozenset(SafeLoader.yaml_implicit_resolvers)
_TAGS: dict[str, str] = {}  # plain scalar text -> its resolved tag
_VALUES: dict[tuple[str, str], Any] = {}  # (tag, text) -> its value: immutable, text-only
_MEMO_CHARS, _MEMO_ENTRIES = 64, 20_000  # bounded: emptied when full


class _Unusual(Exception):
    """Something the standard loader must decide (an alias, a custom tag, an error)."""


class _Loader(SafeLoader):
    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is not ScalarNode:
            return _SEQ if kind is SequenceNode else _MAP
        if not implicit[0] or value[:1] not in _RESOLVED_FIRST:
            return _STR  # quoted, or a first character no resolver claims
        tag = _TAGS.get(value)
        if tag is None:
            tag = SafeLoader.resolve(self, kind, value, implicit)
            if len(value) <= _MEMO_CHARS:
                if len(_TAGS) >= _MEMO_ENTRIES:
                    _TAGS.clear()
                _TAGS[value] = tag
        return tag

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass  # SafeLoader has no path resolvers

    def ascend_resolver(self) -> None:
        pass


class Limit(Exception):
    """A document past a limit of `build`: `message` says which, `line` where (0-based)."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message, self.line = message, line


class _Builder:
    """Builds the values of one composed tree, counting levels and values as it goes.

    Plain strings, most of a seed file's values, are taken where they stand; every other
    node goes through `value`. Values are counted in document order, as libyaml's events
    would count them, so a limit names the same line either way."""

    def __init__(self, loader: _Loader, max_depth: int, max_values: int) -> None:
        self.loader, self.max_depth, self.values_left = loader, max_depth, max_values
        self.seen: set[int] = set()

    def count(self, node: Any) -> None:
        self.values_left -= 1
        if self.values_left < 0:
            raise Limit("values", node.start_mark.line)

    def value(self, node: Any, depth: int) -> Any:
        self.count(node)
        kind = node.__class__
        if kind is ScalarNode:
            return node.value if node.tag == _STR else self.scalar(node)
        if id(node) in self.seen:
            raise _Unusual("an alias")  # a shared node: built once per use, it could explode
        self.seen.add(id(node))
        if depth >= self.max_depth:
            raise Limit("levels", node.start_mark.line)
        depth += 1
        if kind is MappingNode and node.tag == _MAP:
            mapping = {}
            for key, item in node.value:
                if key.__class__ is not ScalarNode:
                    raise _Unusual("a collection as a key")
                if key.tag == _STR and item.__class__ is ScalarNode and item.tag == _STR:
                    self.count(key)
                    self.count(item)
                    mapping[key.value] = item.value
                else:
                    mapping[self.value(key, depth)] = self.value(item, depth)
            return mapping
        if kind is SequenceNode and node.tag == _SEQ:
            items = []
            for item in node.value:
                if item.__class__ is ScalarNode and item.tag == _STR:
                    self.count(item)
                    items.append(item.value)
                else:
                    items.append(self.value(item, depth))
            return items
        raise _Unusual(node.tag)

    def scalar(self, node: ScalarNode) -> Any:
        found = _VALUES.get((node.tag, node.value))
        if found is None:
            construct = _CONSTRUCTORS.get(node.tag)
            if construct is None:
                raise _Unusual(node.tag)  # !!binary, a custom tag, a merge key, ...
            found = construct(self.loader, node)
            if len(node.value) <= _MEMO_CHARS:
                if len(_VALUES) >= _MEMO_ENTRIES:
                    _VALUES.clear()
                _VALUES[(node.tag, node.value)] = found
        return found


def build(text: str, max_depth: int = 1 << 30, max_values: int = 1 << 60) -> Any:
    """The values of a plain document, built here; raises `Limit` past a limit, and
    `Unusual` for anything the standard loader must decide (errors included).

    libyaml composes the whole tree first: a caller must rule out nesting deep enough to
    exhaust the C stack before calling this (frontmatter.refuse_yaml_bombs)."""
    if SafeLoader.yaml_path_resolvers or ("&" in text and "*" in text):
        raise _Unusual("anchors and aliases")  # (an alias needs an anchor, `&`, and a `*`)
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            return None if node is None else _Builder(loader, max_depth, max_values).value(node, 0)
        finally:
            loader.dispose()
    except Limit:
        raise
    except Exception as error:  # unusual content, or an error: the standard loader decides
        raise _Unusual(type(error).__name__) from None


Unusual = _Unusual


def load(text: str) -> Any:
    """`yaml.load(text, Loader=SafeLoader)`: the same value, the same errors."""
    try:
        return build(text)
    except Unusual:
        return yaml.load(text, Loader=SafeLoader)
