"""Mistakes a user can fix, and how every command reports them: one line on stderr, exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


class UserError(Exception):
    """Bad input from the user (a value, a path, a space an algorithm cannot handle).

    The message must name the bad value and say what would be valid. The command line prints
    ``spinrl: error: <message>`` with no traceback and exits with status 2.
    """


# The error a command ended with after catching it (a run that stopped on a NaN loss, a full disk). The
# logger's exit hook records it in status.json, as it does for an uncaught exception.
caught_error: BaseException | None = None


def is_interruption(error: BaseException) -> bool:
    """Whether ``error`` stopped a command rather than failed it: Ctrl-C, or a broken pipe (whoever read
    our output is gone: ``mpiexec`` stopped by Ctrl-C, ``| head``), or any error raised while a Ctrl-C
    was being handled. A run stopped that way stays resumable; it is not marked failed."""
    return isinstance(error, KeyboardInterrupt | BrokenPipeError) or isinstance(
        error.__context__, KeyboardInterrupt
    )


def run_main_guarded(fn: Callable[..., int], *args: Any) -> int:
    """Run a CLI function, turning user mistakes into one line on stderr and exit code 2.

    User mistakes are :class:`UserError` and its subclasses (such as
    :class:`~spinrl.record.folder.RunExistsError`, a run directory that already holds a run).
    """
    global caught_error
    try:
        return fn(*args)
    except UserError as e:
        caught_error = e
        print(f"spinrl: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        try:
            print("spinrl: interrupted", file=sys.stderr)
        except OSError:  # stderr's reader is gone too (mpiexec stopped by the same Ctrl-C)
            pass
        return 130
    except OSError as e:  # a path that cannot be created or written: permissions, missing parent, full disk
        if is_interruption(e):
            return 130
        caught_error = e
        where = f": {e.filename}" if getattr(e, "filename", None) else ""
        print(f"spinrl: error: {e.strerror or e}{where}", file=sys.stderr)
        return 2
