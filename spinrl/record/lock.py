"""Who writes a run: the identity of a process, and the lock that lets one process write a run at a time.

A pid alone does not name a process: the kernel reuses it once the process is gone. The pair (pid, start
time) does (:func:`process_start_time`), so a status or lock record naming a live but unrelated process is
recognised as stale.

The lock is an exclusive ``fcntl.flock`` on ``<run dir>/.lock``. The kernel ties it to the open file and
drops it when the process ends, however it ends, so a killed run never leaves a stale lock behind. The
lock file's contents (pid, start time, host, start date) only serve the message a refused writer prints.
:mod:`spinrl.record.folder` decides when a writer takes it.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from spinrl.common.errors import UserError
from spinrl.record.names import LOCK_FILE


# ----- which process is which ------------------------------------------------------------------------------
def process_start_time(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (Linux: field 22 of /proc/PID/stat).

    A pid is reused once its process is gone; the pair (pid, start time) is not. None where there is no
    /proc, or no such live process (a zombie counts as gone).
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    # The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    if len(fields) < 20 or fields[0] == "Z":
        return None
    return int(fields[19])


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, but belongs to another user
        return True
    return True


def process_alive(pid: int, start: int | None = None) -> bool:
    """Whether the process ``pid`` that started at ``start`` (see :func:`process_start_time`) still runs.

    Without ``start`` (a record from an older spinrl), or where /proc is missing, only the pid is checked.
    """
    if not pid_alive(pid):
        return False
    if start is None or not Path("/proc/self/stat").exists():
        return True
    return process_start_time(pid) == start


def this_process() -> dict[str, Any]:
    """This process as status.json and the lock file record it: pid, its start time, host."""
    return dict(pid=os.getpid(), pid_start=process_start_time(os.getpid()), hostname=socket.gethostname())


# ----- one writer per run: the lock ---------------------------------------------------------------------------
class RunInUseError(UserError):
    """Another live process is writing to the run directory."""


# Locks this process holds, by the run directory's real path (see acquire_run_lock).
_HELD: dict[str, RunLock] = {}


class RunLock:
    """The exclusive right to write a run directory, held by this process until :meth:`release` or exit.

    The kernel ties an ``flock`` to the open file, so a killed process never leaves a stale lock.
    """

    def __init__(self, run_dir: str | os.PathLike, fd: int):
        self.run_dir = Path(run_dir)
        self.fd: int | None = fd
        self.pid = os.getpid()  # a forked copy of this object must not unlock its parent's run

    @property
    def held(self) -> bool:
        return self.fd is not None

    def release(self) -> None:
        """Give the run directory up (idempotent)."""
        import fcntl

        fd, self.fd = self.fd, None
        if fd is None:
            return
        key = os.path.realpath(self.run_dir)
        if _HELD.get(key) is self:
            del _HELD[key]
        try:
            if os.getpid() == self.pid:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _describe_holder(text: str) -> str:
    try:
        info = json.loads(text)
    except ValueError:
        info = None
    if not isinstance(info, dict) or "pid" not in info:
        return "another process"
    since = f", running since {info['started']}" if info.get("started") else ""
    return f"process {info['pid']} on {info.get('hostname', '?')}{since}"


def _read_fd(fd: int) -> str:
    try:
        return os.pread(fd, 4096, 0).decode(errors="replace")
    except OSError:
        return ""


def in_use_error(run_dir: str | os.PathLike, holder: str) -> RunInUseError:
    return RunInUseError(
        f"{run_dir} is in use: {holder} is writing to it; wait for that run to end "
        "(or stop it) before starting or resuming it again"
    )


def lock_holder(run_dir: str | os.PathLike) -> str | None:
    """Who holds the run directory's lock, described for a message; None when nobody else does.

    Reads only: a missing lock file is not created.
    """
    import fcntl

    held = _HELD.get(os.path.realpath(run_dir))
    if held is not None and held.held:
        return None  # this very process: it may take the run over
    try:
        fd = os.open(Path(run_dir, LOCK_FILE), os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _describe_holder(_read_fd(fd))
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def acquire_run_lock(run_dir: str | os.PathLike) -> RunLock:
    """Take the run directory's lock (the directory must exist), or raise :class:`RunInUseError`.

    Within one process the newest writer takes the lock over from an older one (a run that ended in an
    exception without closing its logger); between processes the first one keeps it until it ends.
    The lock file then names this process, so a refused writer can say who holds it.
    """
    import fcntl

    key = os.path.realpath(run_dir)
    held = _HELD.get(key)
    if held is not None and held.held and not _same_file(held.fd, Path(run_dir, LOCK_FILE)):
        held.release()  # the folder was deleted and made anew since: that lock guards nothing now
    if held is not None and held.held and held.pid == os.getpid():
        lock = RunLock(run_dir, held.fd)
        held.fd = None  # the old holder's release is now a no-op
    else:
        fd = os.open(Path(run_dir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
        for attempt in range(5):  # a reader's momentary shared lock (lock_holder) is not a writer
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == 4:
                    holder = _read_fd(fd)
                    os.close(fd)
                    raise in_use_error(run_dir, _describe_holder(holder)) from None
                time.sleep(0.05)
        lock = RunLock(run_dir, fd)
    me = dict(this_process(), started=_dt.datetime.now().isoformat(timespec="seconds"))
    os.ftruncate(lock.fd, 0)
    os.pwrite(lock.fd, json.dumps(me).encode(), 0)
    _HELD[key] = lock
    return lock


class LaunchClaim:
    """A grid's claim on the run folder of a variant it launches, held until :meth:`release`.

    The run's own lock (:func:`acquire_run_lock`) is taken by the variant's process once it starts; before
    that, the grid already writes into the folder (``variant.json``, the header of ``output.log``). Two
    identical grids started at once would both pass their checks and both write there, and the loser's
    refusal would land in the winner's ``output.log``. The claim is an exclusive ``flock`` on each run
    folder itself (a lock the run's own, on ``.lock``, does not collide with); folders it had to create
    are removed again on release when they are still empty.
    """

    def __init__(self, run_dirs: list[str]):
        import fcntl

        self._held: list[tuple[str, int, bool]] = []
        try:
            for run_dir in run_dirs:
                created = not os.path.isdir(run_dir)
                os.makedirs(run_dir, exist_ok=True)
                fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY)
                self._held.append((run_dir, fd, created))
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise RunInUseError(
                        f"{run_dir} is being launched by another grid right now; wait for that grid to end "
                        "(or stop it) before starting or resuming these runs"
                    ) from None
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Give every folder up (idempotent); remove those this claim created and nothing filled."""
        held, self._held = self._held, []
        for run_dir, fd, created in held:
            os.close(fd)
            if created:
                try:
                    os.rmdir(run_dir)  # only if still empty
                except OSError:
                    pass


def held_locks() -> list[RunLock]:
    """The run locks this process holds now."""
    return [lock for lock in _HELD.values() if lock.held and lock.pid == os.getpid()]


def _same_file(fd: int | None, path: Path) -> bool:
    try:
        return fd is not None and os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False
