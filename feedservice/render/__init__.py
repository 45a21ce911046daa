"""Renderers: one module per format (rss, atom, jsonfeed), OPML and the HTML pages.

Every renderer is a pure function of its inputs, so the same data gives the same bytes
in every process, across reloads and restarts. `documents.py` gathers those inputs from
the store.
"""
