"""feedservice: a directory of article files served as RSS, Atom and JSON feeds."""

__version__ = "0.1.0"
