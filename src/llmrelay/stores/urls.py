"""Storage URLs: the one place that turns ``sqlite:///...`` into a file path.

    >>> sqlite_path("sqlite:///llmrelay.db"), sqlite_path("sqlite:////var/lib/llmrelay.db")
    ('llmrelay.db', '/var/lib/llmrelay.db')
    >>> sqlite_path("sqlite://:memory:"), sqlite_path("sqlite://"), sqlite_path("postgresql://db/x")
    (':memory:', ':memory:', None)
"""

from __future__ import annotations


def sqlite_path(url: str) -> str | None:
    """The file of a ``sqlite://`` URL (three slashes: relative, four: absolute; ":memory:" for
    none or an in-memory one), or None when ``url`` is not a SQLite URL."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme != "sqlite":
        return None
    path = rest[1:] if rest.startswith("/") else rest
    return path or ":memory:"
