"""The search index: SQLite FTS5 over each article's title, summary and content text.

The `search` table (store/db.py) holds one row per file that gives a published or
scheduled article (drafts are left out), keyed by the file's id, so a search answers
file ids that a caller intersects with a feed's members (already newest first). The
loader keeps it in step with `files` in the same transaction (runtime/loader.py): a
file that turned bad keeps its row with its last good version, a removed file or a
draft loses it. The table stores its text (no `content=''`): SQLite before 3.43 (Debian
12's, CI's) cannot delete from a contentless table, and an external-content table needs
the exact old text to delete a row; the text costs about its own size on disk. The
index text is made in the parse step (runtime/parsing.py), across cores; a change to
this module re-parses every file (runtime/loader.py `_code_versions`), so the index
always holds what this code makes.

Queries are words, "quoted phrases" and -excluded words or phrases, all of which must
match (AND). User text never reaches FTS5 as syntax: every word and phrase is passed
double-quoted, so NEAR, column filters, `*`, `^`, AND/OR/NOT are only words.
"""

from __future__ import annotations

import html
import re
import sqlite3
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import numpy as np

MAX_QUERY_CHARS = 200
MAX_TERMS = 20  # words, phrases and exclusions, after de-duplication
MAX_CONTENT_CHARS = 100_000  # of content text indexed per article (the rest is left out)
_ITEM = re.compile(r'(-?)"([^"]*)"?|([^\s"]+)')  # a phrase (to the end if unclosed) or word
_INVISIBLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")  # controls, lone surrogates
_EDGES = re.compile(r"^[\W_]+|[\W_]+$")  # (the tokenizer drops them too)
_TAG = re.compile(r"<[^>]*>")


class SearchError(ValueError):
    """A query that cannot be searched: its message is one line for a 400 answer."""


class SearchQuery(NamedTuple):
    """A parsed query: lower-cased, de-duplicated and sorted, so equal queries are equal."""

    terms: tuple[str, ...]  # words (a word with inner punctuation is matched as a phrase)
    phrases: tuple[str, ...]  # several words, in this order, next to each other
    excluded: tuple[str, ...]  # words or phrases that must not occur

    @property
    def canonical(self) -> str:
        """The normalised `q`: words, then "phrases", then -exclusions, each sorted."""
        excluded = (f'-"{item}"' if " " in item else f"-{item}" for item in self.excluded)
        return " ".join([*self.terms, *(f'"{p}"' for p in self.phrases), *excluded])

    @property
    def match_expression(self) -> str:
        """A safe FTS5 MATCH string: every word and phrase a quoted string, nothing else."""
        wanted = " AND ".join(map(_quoted, self.terms + self.phrases))
        return " NOT ".join([f"({wanted})", *map(_quoted, self.excluded)])


def parse_query(text: str) -> SearchQuery:
    """`q` as typed → a SearchQuery. Raises SearchError (one line) for a query that is too
    long, has too many terms or has nothing to look for: an empty query, or one of only
    exclusions (FTS5 cannot list every row but some; a 400 says so, where an empty
    feed would look like "nothing matched")."""
    if len(text) > MAX_QUERY_CHARS:
        raise SearchError(f"q is longer than {MAX_QUERY_CHARS} characters")
    terms: dict[str, None] = {}
    phrases: dict[str, None] = {}
    excluded: dict[str, None] = {}
    for match in _ITEM.finditer(_INVISIBLE.sub(" ", text)):
        negated, phrase, word = match.groups()
        if word is not None:
            negated, phrase = ("-", word[1:]) if word.startswith("-") else ("", word)
        item = _EDGES.sub("", " ".join(phrase.lower().split()))
        if not item:
            continue  # (punctuation only: nothing the tokenizer would look for)
        (excluded if negated else phrases if " " in item else terms)[item] = None
    if len(terms) + len(phrases) + len(excluded) > MAX_TERMS:
        raise SearchError(f"q has more than {MAX_TERMS} words and phrases")
    if not terms and not phrases:
        what = "only excluded words" if excluded else "no words"
        raise SearchError(f"q has {what} to search for")
    return SearchQuery(tuple(sorted(terms)), tuple(sorted(phrases)), tuple(sorted(excluded)))


def _quoted(item: str) -> str:
    return '"' + item.replace('"', '""') + '"'


def matching_ids(connection: sqlite3.Connection, query: SearchQuery) -> set[int]:
    """The ids of the files whose article matches, in no order: the caller intersects
    them with a feed's members, which are in feed order (newest first).

    FTS5 finds 30,000 matches of a common word among 100,000 articles in about 1 ms; what
    costs is handing them to Python. Asking FTS5 for a feed's members only (`rowid IN
    (...)`) is far slower: it looks each one up. (Measured: benchmarks/search.py.)"""
    return set(matching_id_array(connection, query).tolist())


def matching_id_array(connection: sqlite3.Connection, query: SearchQuery) -> np.ndarray:
    """`matching_ids` as a numpy array, for filters over 100,000 articles: SQLite joins the
    ids into one string and numpy parses it, which is ten times faster than a row each."""
    row = connection.execute(
        "SELECT group_concat(rowid) FROM search WHERE search MATCH ?", (query.match_expression,)
    ).fetchone()
    import numpy as np  # (here: only subscribers' searches need it, ~13 MB a process)

    return np.fromstring(row[0] or "", dtype=np.int64, sep=",")


class IndexText(NamedTuple):
    """What the index holds of one article."""

    title: str
    summary: str
    content: str


def index_text(title: str, summary: str, content_html: str) -> IndexText:
    """An article's text as the index takes it: its content HTML (sanitised, so tags
    are well formed) as text, bounded."""
    content = " ".join(_TAG.sub(" ", content_html).split()) if content_html else ""
    if len(content) > MAX_CONTENT_CHARS:
        content = content[:MAX_CONTENT_CHARS].rpartition(" ")[0]
    return IndexText(title, summary, html.unescape(content) if "&" in content else content)
