"""Query text as it may travel back and into the log: bounded, and on one line.

A query is text from anyone who can publish on the topic. Echoed whole it made a 10 MB
result message, and a newline in it forged a log line of its own (``...\\n[ERROR] [...]``;
issue 16, finding 10). Results carry :func:`excerpt`; log lines carry :func:`loggable`.
"""
from __future__ import annotations


def excerpt(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in "..." when cut."""
    return text if len(text) <= limit else text[: max(0, limit - 3)] + "..."


def loggable(text: str, limit: int = 80) -> str:
    """An excerpt with every non-printable character (newline, escape, other controls) written as its
    Python escape (``\\n``, ``\\x1b``), so that it cannot start a line or steer a terminal."""
    short = excerpt(text, limit)
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in short)
