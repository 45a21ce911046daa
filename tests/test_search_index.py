"""The search index (store/search.py): kept by the real loader over real seed files, read
with real FTS5 queries. Each test says what would break it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import Site, article_fields, make_site, write_seed
from sites import SITES, expected_posts, prose_lines, require_sites, site_config

from feedservice.runtime.loader import Loader
from feedservice.store import db
from feedservice.store.db import Store
from feedservice.store.search import (
    MAX_QUERY_CHARS,
    MAX_TERMS,
    SearchError,
    SearchQuery,
    matching_ids,
    parse_query,
)


def file_ids(store: Store) -> dict[str, int]:
    return {row.path: row.id for row in store.files()}


def found(site: Site, q: str) -> set[str]:
    """The seed paths whose article matches `q`."""
    paths = {row.id: row.path for row in site.store.files()}
    return {paths[file_id] for file_id in matching_ids(site.store.reader(), parse_query(q))}


def seed(seeds: Path, name: str, n: int, **fields: object) -> Path:
    return write_seed(seeds, name, **article_fields(n, **fields))


def test_titles_excerpts_stems_and_diacritics(seeds: Path, tmp_path: Path) -> None:
    seed(seeds, "a.md", 1, title="Robots running the café", excerpt="Zürich startups")
    seed(seeds, "b.md", 2, title="Quiet cafe", excerpt="A robot runs a bakery in Zurich")
    seed(seeds, "c.md", 3, title="Ελληνικά νέα", excerpt="Nothing else")
    site = make_site(seeds, None, tmp_path / "state")
    assert found(site, "running") == {"a.md", "b.md"}  # porter: running ~ runs
    assert found(site, "robots") == {"a.md", "b.md"}
    assert found(site, "cafe") == found(site, "CAFÉ") == {"a.md", "b.md"}  # diacritics
    assert found(site, "zurich bakery") == {"b.md"}  # every word, in any field
    assert found(site, "ελληνικά") == found(site, "ΝΈΑ") == {"c.md"}  # non-Latin, any case
    assert found(site, "article") == set()  # (not a word of any of them)


def test_phrases_and_exclusions(seeds: Path, tmp_path: Path) -> None:
    seed(seeds, "a.md", 1, title="Machine learning at scale", excerpt="x")
    seed(seeds, "b.md", 2, title="Learning about machine tools", excerpt="x")
    seed(seeds, "c.md", 3, title="Machine learning, deep learning", excerpt="deep dive")
    site = make_site(seeds, None, tmp_path / "state")
    assert found(site, "machine learning") == {"a.md", "b.md", "c.md"}
    assert found(site, '"machine learning"') == {"a.md", "c.md"}  # adjacent, in order
    assert found(site, '"machine learning" -deep') == {"a.md"}
    assert found(site, 'machine -"deep learning" -scale') == {"b.md"}
    with pytest.raises(SearchError, match="only excluded"):
        parse_query("-machine")  # FTS5 cannot answer "everything but": a clear 400


def test_edits_deletes_drafts_and_bad_files_follow_reloads(seeds: Path, tmp_path: Path) -> None:
    edited = seed(seeds, "edited.md", 1, title="Original walrus")
    deleted = seed(seeds, "deleted.md", 2, title="Doomed walrus")
    seed(seeds, "drafted.md", 3, title="Shy walrus")
    broken = seed(seeds, "broken.md", 4, title="Sturdy walrus")
    seed(seeds, "draft.md", 5, title="Secret walrus", published=False)
    site = make_site(seeds, None, tmp_path / "state")
    assert found(site, "walrus") == {"edited.md", "deleted.md", "drafted.md", "broken.md"}

    seed(seeds, "edited.md", 1, title="Revised narwhal")
    deleted.unlink()
    seed(seeds, "drafted.md", 3, title="Shy walrus", published=False)
    broken.write_text("---\ntitle: [unclosed\n---\n", encoding="utf-8")
    site.reload()
    assert found(site, "walrus") == {"broken.md"}  # bad: its last good version stays
    assert found(site, "narwhal") == {"edited.md"}
    assert found(site, "original") == set()

    seed(seeds, "broken.md", 4, title="Mended narwhal")
    seed(seeds, "drafted.md", 3, title="Bold narwhal")
    site.reload()
    assert found(site, "narwhal") == {"edited.md", "broken.md", "drafted.md"}
    assert found(site, "walrus") == set()
    for path in (edited, seeds / "broken.md"):
        path.unlink()
    site.reload()
    assert found(site, "narwhal") == {"drafted.md"}
    assert site.store.reader().execute("SELECT count(*) FROM search").fetchone()[0] == 1


def test_scheduled_articles_are_indexed(seeds: Path, tmp_path: Path) -> None:
    """The caller intersects with a feed's members, so an article not yet due is indexed
    (and found once it is in a feed) rather than indexed when it falls due."""
    seed(seeds, "later.md", 1, title="Future walrus", publishedDateTime="2999-01-01T00:00:00Z")
    site = make_site(seeds, None, tmp_path / "state")
    assert found(site, "walrus") == {"later.md"}


# Hostile queries: each is plain words to FTS5, or a SearchError, never syntax.
HOSTILE = [
    "NEAR(alpha beta)",
    "NEAR(alpha beta, 1)",
    "title:alpha",
    "{title summary}:alpha",
    "alph*",
    "^beta",
    "alpha + beta",
    'alpha" OR "gamma',
    "alpha OR gamma",
    "AND OR NOT",
    "alpha AND NOT",
    '"',
    '""',
    "*",
    "^",
    "-",
    "(",
    ")",
    "alpha)",
    "'alpha'",
    "alpha\x00beta",
    "alpha\ud800beta",
    "\u202ealpha",
    "x" * 10_000,
    "alpha " * 30,
    " ".join(f"w{n}" for n in range(MAX_TERMS + 1)),
]


def test_user_text_never_becomes_fts5_syntax(seeds: Path, tmp_path: Path) -> None:
    seed(seeds, "ab.md", 1, title="Alpha meets beta", excerpt="x")  # NEAR(alpha beta) would
    seed(seeds, "g.md", 2, title="Gamma", excerpt="x")  # alpha OR gamma would
    seed(seeds, "words.md", 3, title="near alpha beta, title: alpha and or not gamma", excerpt="x")
    site = make_site(seeds, None, tmp_path / "state")
    every = {"ab.md", "g.md", "words.md"}
    for q in HOSTILE:
        try:
            query = parse_query(q)
        except SearchError as error:
            assert "\n" not in str(error)
            continue
        assert set(query.canonical) - {" "}, q
        result = found(site, q)
        assert result < every, q  # never all three: no OR, no NEAR, no prefix
        assert result <= {"words.md", "ab.md"}, q
    assert found(site, "NEAR(alpha beta)") == {"words.md"}  # the word "near" is needed
    assert found(site, "title:alpha") == {"words.md"}  # the word "title" too
    assert found(site, "alpha OR gamma") == {"words.md"}
    assert found(site, "AND OR NOT") == {"words.md"}
    # (what the same text would do as FTS5 syntax, so the above can fail)
    raw = site.store.reader().execute
    assert raw("SELECT rowid FROM search WHERE search MATCH 'alpha OR gamma'").fetchall()[2:]
    with pytest.raises(sqlite3.OperationalError):
        raw("SELECT rowid FROM search WHERE search MATCH ?", ('alpha"',)).fetchall()


def test_parse_query_normalises_and_bounds() -> None:
    query = parse_query('  Robots\t"Machine   LEARNING"  robots -Foo -"Bar  baz" "solo" ...  ')
    assert query == SearchQuery(("robots", "solo"), ("machine learning",), ("bar baz", "foo"))
    assert query.canonical == 'robots solo "machine learning" -"bar baz" -foo'
    assert parse_query(query.canonical) == query  # the canonical form is a fixed point
    assert parse_query("b a") == parse_query("a b a")  # order and repeats do not matter
    assert query.match_expression == (
        '("robots" AND "solo" AND "machine learning") NOT "bar baz" NOT "foo"'
    )
    assert parse_query('say "hi').phrases == ()  # an unclosed quote runs to the end
    assert parse_query('say "hi there').phrases == ("hi there",)
    for q in [*HOSTILE, "x" * (MAX_QUERY_CHARS - 1) + "yz"]:
        try:
            query = parse_query(q)
        except SearchError:
            continue
        assert parse_query(query.canonical) == query, q
        assert query.match_expression.count('"') % 2 == 0
    for q, message in [
        ("", "no words"),
        ("  *** ", "no words"),
        ("-a -b", "only excluded"),
        ("x" * (MAX_QUERY_CHARS + 1), "longer than"),
        (" ".join(f"w{n}" for n in range(MAX_TERMS + 1)), "more than"),
    ]:
        with pytest.raises(SearchError, match=message):
            parse_query(q)
    assert len(parse_query(" ".join(f"w{n}" for n in range(MAX_TERMS))).terms) == MAX_TERMS


def test_restart_keeps_the_index_and_a_schema_change_rebuilds_it(
    seeds: Path, tmp_path: Path
) -> None:
    seed(seeds, "a.md", 1, title="Persistent walrus")
    site = make_site(seeds, None, tmp_path / "state")
    site.store.close()
    again = make_site(seeds, None, tmp_path / "state")  # a new loader: nothing re-parsed
    assert again.loader.reload() is None
    assert found(again, "walrus") == {"a.md"}
    with again.store.transaction() as tx:  # a row only an old schema's store would hold
        tx.execute("INSERT INTO search (rowid, title, summary, content) VALUES (99, 'x', '', '')")
        tx.set_meta("schema", "5")
    again.store.close()
    store = Store.in_dir(tmp_path / "state")
    assert store.meta("schema") == db.SCHEMA_VERSION
    assert store.reader().execute("SELECT count(*) FROM search").fetchone()[0] == 0
    loader = Loader(store, seeds, None, environ={}, options={"config_settle": 0})
    loader.reload()
    rows = store.reader().execute("SELECT rowid, title FROM search").fetchall()
    assert rows == [(file_ids(store)["a.md"], "Persistent walrus")]


def test_a_new_seed_directory_empties_the_index(seeds: Path, tmp_path: Path) -> None:
    seed(seeds, "a.md", 1, title="Walrus")
    seed(seeds, "c.md", 3, title="Walrus again")
    make_site(seeds, None, tmp_path / "state").store.close()
    other = tmp_path / "other"
    seed(other, "b.md", 2, title="Narwhal")
    site = make_site(other, None, tmp_path / "state")
    assert site.store.reader().execute("SELECT title FROM search").fetchall() == [("Narwhal",)]


def test_full_content_of_a_real_site_is_searched(tmp_path: Path) -> None:
    """A phrase from deep in a real post's body (not its title or summary) finds it."""
    root = require_sites() / "jekyll-docs"
    site = make_site(root, site_config(tmp_path, "jekyll-docs"), tmp_path / "state")
    ids = file_ids(site.store)
    checked = 0
    for post in expected_posts("jekyll-docs"):
        lines = prose_lines(post.body)
        if len(lines) < 3 or post.path not in ids:
            continue
        words = lines[-1].split()[:6]
        query = parse_query('"' + " ".join(words) + '"')
        assert ids[post.path] in matching_ids(site.store.reader(), query), (post.path, words)
        checked += 1
    assert checked >= 5
    assert SITES["jekyll-docs"]
