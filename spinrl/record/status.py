"""status.json: whether a run is running, finished or failed, how far it came, and which process wrote it.

The logger writes it at every epoch (:func:`write_status`). A run whose algorithm raised is marked failed
at once (:func:`marks_failed_runs`), even when the Python session that called it goes on, and a process
that an exception ends marks the run it was writing at exit (:func:`mark_failed_at_exit`). What a status
says about a run (:func:`run_state`) adds one case: ``interrupted``, a run still marked running whose
process is gone from this machine (its pid is free, or now belongs to a process that started at another
time).
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spinrl.common import errors
from spinrl.common.errors import is_interruption
from spinrl.record.folder import write_text_atomically
from spinrl.record.lock import held_locks, process_alive, this_process
from spinrl.record.names import STATUS_FILE

# The states a run can be in (see run_state).
RUNNING, FINISHED, FAILED, INTERRUPTED, UNKNOWN = "running", "finished", "failed", "interrupted", "unknown"


def write_status(run_dir: str | os.PathLike, status: str, epoch: int, epochs: int, **extra: Any) -> None:
    """Record the run's status, its progress, and which process (pid and start time) on which machine wrote it."""
    info = dict(
        status=status,
        epoch=epoch,
        epochs=epochs,
        **this_process(),
        updated=_dt.datetime.now().isoformat(timespec="seconds"),
        **extra,
    )
    write_text_atomically(Path(run_dir, STATUS_FILE), json.dumps(info, indent=2))


def error_summary(error: BaseException) -> str:
    """An exception in one line for status.json: its type and the first line of its message."""
    message = str(error).strip().splitlines()
    summary = f"{type(error).__name__}: {message[0]}" if message else type(error).__name__
    return summary[:300]


def mark_failed(run_dir: str | os.PathLike, error: BaseException) -> dict[str, Any] | None:
    """Mark the run failed with ``error``'s summary, if this process was running it; return what was
    written (None when the run was not this process's running run, which then stays as it is)."""
    status = read_status(run_dir) or {}
    if status.get("status") != RUNNING or status.get("pid") != os.getpid():
        return None
    epoch, epochs = status.get("epoch", 0), status.get("epochs", 0)
    write_status(run_dir, FAILED, epoch, epochs, error=error_summary(error))
    return dict(status=FAILED, epoch=epoch, epochs=epochs)


def mark_failed_at_exit(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """At interpreter exit: if an exception ended the process while it was running the run in ``run_dir``,
    mark the run failed (:func:`mark_failed`).

    Every algorithm, however started (Python, the command line, a grid's child), ends here, so this is
    the one place that knows. Left alone: finished runs; runs stopped by Ctrl-C or ``sys.exit``, which
    stay "running" (``spinrl ls`` calls them interrupted, ``--resume`` continues them); and killed
    processes, which run no exit handlers. The command line's one-line errors count as failures too (see
    ``spinrl.common.errors.caught_error``).
    """
    # Python sets sys.last_value when an uncaught exception ends the process; a command that caught
    # the error and printed it in one line leaves it in errors.caught_error.
    error = getattr(sys, "last_value", None) or errors.caught_error
    if not isinstance(error, Exception):
        return None
    return mark_failed(run_dir, error)


def marks_failed_runs(algo: Callable) -> Callable:
    """Decorate an algorithm function: when it raises, the run it was writing is marked failed.

    Without this, a run started from Python (a notebook, a sweep that catches errors and goes on) stayed
    "running" in status.json and ``spinrl ls`` for as long as the interpreter lived, and kept its lock:
    only the exit hook of the logger marked it. The run is the one whose lock this call took; its
    status becomes "failed" with the error's summary (if it was "running" and written by this process),
    and its lock is given up, so that a fixed call can resume it at once. Ctrl-C is not a failure
    (:func:`spinrl.common.errors.is_interruption`): that run stays resumable, as on the command line.
    """

    @functools.wraps(algo)
    def run(*args: Any, **kwargs: Any) -> Any:
        held_before = held_locks()
        try:
            return algo(*args, **kwargs)
        except Exception as e:
            if is_interruption(e):
                raise
            for lock in held_locks():
                if not any(lock is old for old in held_before):
                    mark_failed(lock.run_dir, e)
                    lock.release()
            raise

    return run


def read_status(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The run's status.json, or None when there is none (or it cannot be read)."""
    try:
        status = json.loads(Path(run_dir, STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return status if isinstance(status, dict) else None


def run_state(status: dict[str, Any] | None) -> str:
    """What a status.json (as :func:`read_status` returns it) says about the run.

    ``finished`` and ``failed`` are taken as written; anything else written there is ``unknown``. A
    ``running`` status is checked: when it was written on this machine and its process is gone, the
    run was ``interrupted`` (killed, crashed without clean-up, or the machine restarted) and can be
    continued with ``--resume``. "Gone" includes
    a pid that the system has since given to another process: the recorded start time tells them apart.
    A run last seen running on another machine cannot be checked from here: its state is
    ``running on HOST``. No status at all gives ``unknown``.
    """
    if not status:
        return UNKNOWN
    state = status.get("status", UNKNOWN)
    if state not in (RUNNING, FINISHED, FAILED, INTERRUPTED):
        return UNKNOWN  # a damaged or foreign status.json: its text is not shown as a state
    if state != RUNNING:
        return state
    host = status.get("hostname")
    if host not in (None, socket.gethostname()):
        return f"running on {host}"
    pid, start = status.get("pid"), status.get("pid_start")
    if isinstance(pid, bool) or not isinstance(pid, int):
        return INTERRUPTED
    start = start if isinstance(start, int) and not isinstance(start, bool) else None
    return RUNNING if process_alive(pid, start) else INTERRUPTED
