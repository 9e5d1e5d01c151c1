"""The zygote: a process that imports torch and the algorithm once, then forks one child per grid variant.

Starting Python and importing torch takes seconds, often longer than a short run itself; a child forked
from a process that has done it starts at once. The zygote runs no torch code, so forking it is safe (the
same idea as multiprocessing's forkserver, without re-importing the user's script).

For a short run, a forked variant's time went mostly elsewhere than the run before the measures below:
the imports (the zygote's, after the command line's own), the interpreter's teardown in the child and
again in the zygote at the end of the grid, and polling between a child's end and the next start. What
each measure saves (the figures, and a grid of six short runs before and after, are in
benchmarks/results/code-measurements.md):

- the command line starts the zygote before importing the algorithm itself (:func:`start_early`), so the
  two imports overlap and the first variant starts sooner;
- :func:`serve_forks` freezes the imported objects out of the garbage collector (``gc.freeze``), so a
  child's collections and its exit do not walk, and copy, the zygote's heap;
- a child, and the zygote itself, end with :func:`exit_without_teardown` once their exit handlers have
  run: the rest of the teardown, per variant and per grid;
- the zygote hears of a child's end from a pidfd at once, and the grid from the zygote's reply at once:
  the next variant starts without a polling delay.

The protocol, one line each way: the grid sends ``{"spec": ..., "log": ..., "threads": N}``; the
zygote answers ``ready`` once imported, ``started PID`` per request and ``exit PID CODE`` per child.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import json
import os
import queue
import selectors
import subprocess
import sys
import threading
import time
from typing import NoReturn

from spinrl.launch.child import (
    PARENT_PID_ENV,
    STOP_GRACE_SECONDS,
    THREAD_VARIABLES,
    child_env,
    end_with_parent,
)
from spinrl.record.lock import pid_alive

# What a run imports on its first step (torch.optim pulls in torch._dynamo), so that children need not.
PRELOAD = [
    "torch",
    "torch._dynamo",
    "torch.utils.tensorboard",
    "tensorboard.summary",
    "gymnasium",
    "spinrl.record.logger",
]


class Zygote:
    """The grid's handle on a zygote process importing ``modules``; :meth:`fork` starts a variant."""

    def __init__(self, modules: list[str]):
        self.modules = modules
        # The zygote itself runs on one thread; each child gets the grid's thread budget (see fork).
        env = dict(child_env(1), **{PARENT_PID_ENV: str(os.getpid())})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "spinrl.launch.zygote", *modules],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
            env=env,
            start_new_session=True,
        )
        self.exit_codes: dict[int, int] = {}
        # Set whenever a child ends (or the zygote does), so the grid can start the next variant at once.
        self.changed = threading.Event()
        self._replies: queue.Queue = queue.Queue()
        self._ready = False
        threading.Thread(target=self._read_replies, daemon=True, name="zygote-replies").start()

    def wait_ready(self, timeout: float = 120) -> None:
        """Wait until the zygote has imported its modules; RuntimeError if it could not."""
        if self._ready:
            return
        try:
            reply = self._replies.get(timeout=timeout)
        except queue.Empty:
            reply = None
        if reply != "ready":
            self.close()
            raise RuntimeError("the zygote process could not import " + ", ".join(self.modules))
        self._ready = True

    def _read_replies(self) -> None:
        for line in self.proc.stdout:
            words = line.split()
            if words[:1] == ["exit"]:
                self.exit_codes[int(words[1])] = int(words[2])
                self.changed.set()
            elif words[:1] == ["started"]:
                self._replies.put(int(words[1]))
            elif words == ["ready"]:
                self._replies.put("ready")
        self._replies.put(None)  # the zygote is gone
        self.changed.set()

    def fork(self, spec_path: str, log_path: str, threads: int) -> ForkedChild:
        """Start the variant of ``spec_path`` with ``threads`` threads, its output going to ``log_path``."""
        self.wait_ready()
        request = {"spec": spec_path, "log": log_path, "threads": threads}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        try:
            pid = self._replies.get(timeout=60)
        except queue.Empty:
            pid = None
        if not isinstance(pid, int):
            raise RuntimeError("the zygote process died")
        return ForkedChild(pid, self)

    def close(self, wait: bool = True) -> None:
        """Let the zygote exit once its children have (it reaps and reports them first)."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        if not wait:
            return
        try:
            self.proc.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class ForkedChild:
    """A variant forked by the :class:`Zygote`, with the parts of ``subprocess.Popen`` the grid uses."""

    def __init__(self, pid: int, zygote: Zygote):
        self.pid = pid
        self.zygote = zygote

    @property
    def returncode(self) -> int | None:
        return self.poll()

    def poll(self) -> int | None:
        if self.pid in self.zygote.exit_codes:
            return self.zygote.exit_codes[self.pid]
        if self.zygote.proc.poll() is not None and not pid_alive(self.pid):
            return -1  # the zygote died and cannot tell us; the child is gone too
        return None

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"variant pid {self.pid}", timeout)
            time.sleep(0.05)
        return self.poll()


# ----- started early by the command line ----------------------------------------------------------------
_early: Zygote | None = None


def start_early(module: str, tokens: list[str]) -> None:
    """From the command line, before it imports the algorithm: start the zygote for a local
    ``--parallel K`` grid of single-process runs now, so that its imports overlap the command line's own.

    The grid picks it up in :func:`zygote_for`; one that goes unused (every variant had finished
    already, say) ends with this process, or when the next command line in it starts another.
    """
    global _early
    if _early is not None:
        _early.close(wait=False)
        _early = None
    if not _wants_zygote(tokens) or os.environ.get("SPINRL_NO_ZYGOTE") == "1":
        return
    try:
        _early = Zygote([*PRELOAD, module])
    except OSError:
        return
    atexit.register(_early.close, wait=False)


def _wants_zygote(tokens: list[str]) -> bool:
    """Whether the command line asks for a local parallel grid of single-process runs."""

    def value(flag: str) -> str | None:
        i = tokens.index(flag) if flag in tokens else -1
        return tokens[i + 1] if 0 <= i < len(tokens) - 1 else None

    parallel = value("--parallel")
    one_rank = all(value(flag) in (None, "1") for flag in ("--cpu", "--num_cpu"))
    return (
        parallel is not None
        and parallel.isdigit()
        and int(parallel) > 1
        and one_rank
        and not any(t in ("--backend", "-h", "--help") for t in tokens)  # not for Ray, not for help
    )


def zygote_for(module: str) -> Zygote:
    """A ready zygote for ``module``: the one started early if it fits, else a new one."""
    global _early
    zygote, _early = _early, None
    if zygote is None or zygote.modules[-1] != module or zygote.proc.poll() is not None:
        if zygote is not None:
            zygote.close(wait=False)
        zygote = Zygote([*PRELOAD, module])
    zygote.wait_ready()
    return zygote


# ----- the zygote process: python -m spinrl.launch.zygote MODULE ... -------------------------------------
def serve_forks(modules: list[str]) -> NoReturn:
    """Import ``modules``, then fork a child per request line until stdin closes and every child has ended."""
    gc.disable()  # no collections while importing, so no freed gaps among the objects the children share
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:  # an optional module; a child that needs it will report the error
            pass
    gc.freeze()  # the imported objects: out of every later collection, in here and in each child
    print("ready", flush=True)
    selector = selectors.DefaultSelector()
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ, data=None)
    children: dict[int, int | None] = {}  # pid -> its pidfd, if this system has them
    pending = b""
    listening = True
    while listening or children:
        polling = any(fd is None for fd in children.values())
        for key, _ in selector.select(timeout=0.1 if polling else None):
            if key.data is not None:  # a child's pidfd: it has ended
                _reap(key.data, children, selector)
                continue
            chunk = os.read(sys.stdin.fileno(), 65536)
            if not chunk:  # the grid closed our stdin: finish the children, then exit
                listening = False
                selector.unregister(sys.stdin.fileno())
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                pid = _fork_child(json.loads(line))
                children[pid] = _pidfd(pid)
                if children[pid] is not None:
                    selector.register(children[pid], selectors.EVENT_READ, data=pid)
                print(f"started {pid}", flush=True)
        for pid in [p for p, fd in children.items() if fd is None]:
            _reap(pid, children, selector)
    exit_without_teardown(0)


def _pidfd(pid: int) -> int | None:
    """A file descriptor that becomes readable when child ``pid`` ends (Linux 5.3+), else None."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _reap(pid: int, children: dict[int, int | None], selector: selectors.BaseSelector) -> None:
    """Report child ``pid``'s exit code if it has ended."""
    done, status = os.waitpid(pid, os.WNOHANG)
    if not done:
        return
    fd = children.pop(pid)
    if fd is not None:
        selector.unregister(fd)
        os.close(fd)
    print(f"exit {pid} {os.waitstatus_to_exitcode(status)}", flush=True)


def _fork_child(request: dict) -> int:
    zygote_pid = os.getpid()
    pid = os.fork()
    if pid == 0:
        end_with_parent(zygote_pid)  # the zygote ends with the grid, and its children with it
        _run_forked_child(request)  # never returns
    return pid


def _run_forked_child(request: dict) -> NoReturn:
    """In a forked child: own session, output to the run's log, the grid's thread budget, run the variant."""
    from spinrl.common.errors import run_main_guarded
    from spinrl.launch.child import main

    os.setsid()  # like start_new_session: Ctrl-C in the terminal reaches only the grid
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    gc.enable()
    for (
        var
    ) in THREAD_VARIABLES:  # read by spinrl.common.device.set_thread_budget, and by any process it starts
        os.environ[var] = str(request["threads"])
    try:
        code = run_main_guarded(main, [request["spec"]])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else _print_exit_message(e.code))
    except BaseException as e:  # uncaught: a traceback in the log, and sys.last_value for the logger's hook
        sys.last_type, sys.last_value, sys.last_traceback = type(e), e, e.__traceback__
        sys.excepthook(type(e), e, e.__traceback__)
        code = 1
    exit_without_teardown(code)


def _print_exit_message(message: object) -> int:
    print(message, file=sys.stderr)
    return 1


def exit_without_teardown(code: int) -> NoReturn:
    """End this process as the interpreter would, minus the teardown of every module and object.

    Waits for the threads that are not daemons, runs the exit handlers (the logger's: status.json, the
    run directory's lock) and flushes the output, then leaves with ``os._exit``. Tearing down a process
    that has imported torch takes far longer than leaving it (benchmarks/results/code-measurements.md);
    multiprocessing ends its forked workers with ``os._exit`` for the same reason.
    """
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    from spinrl.common.errors import run_main_guarded
    from spinrl.launch.child import end_with_parent_env, restore_sigint

    end_with_parent_env()  # started by a grid: never outlive it
    restore_sigint()  # its forks too: stop_children's SIGINT must reach the run
    sys.exit(run_main_guarded(serve_forks, sys.argv[1:]))
