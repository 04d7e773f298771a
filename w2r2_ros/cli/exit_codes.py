"""One line and an exit code for every failure a command-line user can cause; a traceback only with --debug.

Exit 2: the user's input is wrong (a config value, a path that is a directory, a bad dataset,
an unreadable checkpoint). Exit 1: the environment failed (disk full, read-only filesystem,
permission denied, out of memory). The fault trial (issue 16, finding 9) met 26-line tracebacks
for a full disk and a read-only ``--data`` where the README promises one line.
"""
from __future__ import annotations

import errno
import sys
from typing import Callable

EXIT_USER = 2
EXIT_ENVIRONMENT = 1

# OSErrors that mean "the machine", not "what you typed".
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.ENOMEM, errno.EMFILE}
_HINTS = {
    errno.ENOSPC: "the disk is full: free space or write elsewhere",
    errno.EDQUOT: "the disk quota is exhausted: free space or write elsewhere",
    errno.EROFS: "the filesystem is read-only: write elsewhere",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


def describe_os_error(error: OSError) -> str:
    """``<path>: <what the system said> (<what to do>)`` on one line."""
    where = error.filename if error.filename is not None else ""
    what = error.strerror or str(error)
    hint = _HINTS.get(error.errno)
    text = f"{where}: {what}" if where else what
    return f"{text} ({hint})" if hint and hint != what.lower() else text


def run_reporting_errors(prog: str, body: Callable[[], int], user_errors: tuple[type[BaseException], ...], debug: bool) -> int:
    """``body()``'s exit code; a ``user_errors`` exception -> one line, exit 2; an OSError or MemoryError ->
    one line, exit 1 (2 for a bad path such as a directory where a file is expected). ``debug``: re-raise."""
    try:
        return body()
    except user_errors as error:
        if debug:
            raise
        _print(prog, " ".join(str(error).split()))
        return EXIT_USER
    except MemoryError:
        if debug:
            raise
        _print(prog, "out of memory")
        return EXIT_ENVIRONMENT
    except OSError as error:
        if debug:
            raise
        _print(prog, describe_os_error(error) + " (--debug shows where)")
        return EXIT_ENVIRONMENT if error.errno in _ENVIRONMENT_ERRNOS else EXIT_USER


def _print(prog: str, message: str) -> None:
    print(f"{prog}: error: {message}", file=sys.stderr)
