"""A variant's own process: what it is given when started, how it ends with the grid, and its entry point.

Every process a grid starts (a variant, the zygote, each ``mpiexec``) ends itself when the grid is gone,
even when the grid was killed with SIGKILL (:func:`end_with_parent`), and gets its share of the cores
through the environment (:func:`child_env`). A variant runs as::

    python -m spinrl.launch.child RUN_DIR/variant.json

reading its run spec (:mod:`spinrl.launch.spec`). The parent side is :mod:`spinrl.launch.local`; the
zygote, which forks variants instead of starting Python again, is :mod:`spinrl.launch.zygote`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from spinrl.common.errors import UserError
from spinrl.launch.spec import load_spec

# The command that runs one variant from its spec file.
CHILD = [sys.executable, "-m", "spinrl.launch.child"]
# Seconds a stopped child gets to write its status and exit after SIGINT before it is killed.
STOP_GRACE_SECONDS = 10.0
# Tells a child started by the grid which process it must not outlive.
PARENT_PID_ENV = "SPINRL_PARENT_PID"
# A variant's thread budget: BLAS libraries read these at start-up, torch reads SPINRL_NUM_THREADS.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "SPINRL_NUM_THREADS")
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _load_prctl():
    """libc's prctl on Linux, looked up once (so a forked child need not load anything), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_prctl = _load_prctl()
# Whether the kernel can end a child with its parent (Linux); elsewhere a thread watches the parent.
CAN_SET_PARENT_DEATH_SIGNAL = _prctl is not None


def set_parent_death_signal() -> bool:
    """Ask the kernel to send this process SIGTERM when its parent dies; False where it cannot."""
    return _prctl is not None and _prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) == 0


def end_with_parent(parent_pid: int) -> None:
    """Make this process end (SIGTERM) when its parent ``parent_pid`` is gone, however the parent died.

    Linux does it with ``prctl(PR_SET_PDEATHSIG)``; elsewhere a thread checks twice a second whether the
    process has been handed to another parent. A parent that died before we got here is caught at once.
    """
    if not set_parent_death_signal():

        def watch() -> None:
            while os.getppid() == parent_pid:
                time.sleep(0.5)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=watch, daemon=True, name="end-with-parent").start()
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)


def end_with_parent_env() -> None:
    """In a child the grid started: :func:`end_with_parent` for the pid the grid left in the environment."""
    parent = os.environ.pop(PARENT_PID_ENV, "")
    if parent.isdigit():
        end_with_parent(int(parent))


def restore_sigint() -> None:
    """Let SIGINT raise KeyboardInterrupt again in a process that inherited it ignored.

    A shell starts a background job (``cmd &``, nohup, many batch schedulers) with SIGINT ignored, and
    the children of that job inherit it: they would then ignore the SIGINT with which
    :func:`stop_children` asks them to stop cleanly, and be killed after the grace period instead.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def child_env(threads: int) -> dict[str, str]:
    """The environment of a variant's process: its thread budget, and plain-text output for its log."""
    from spinrl.common.mpi import PLAIN_OUTPUT_ENV

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # The log is a file, but mpiexec gives its ranks a pseudo-terminal: ask for plain text, no live bars.
    env.update(TERM="dumb", NO_COLOR="1")
    env[PLAIN_OUTPUT_ENV] = "1"
    for var in THREAD_VARIABLES:
        env[var] = str(threads)
    return env


def main(argv: list[str] | None = None) -> int:
    """Run one variant from its spec file."""
    argv = sys.argv[1:] if argv is None else argv
    end_with_parent_env()  # started by a grid: never outlive it
    restore_sigint()  # the zygote's forks too: stop_children's SIGINT must reach the run
    if len(argv) != 1:
        raise UserError("usage: python -m spinrl.launch.child SPEC.json")
    thunk, kwargs = load_spec(argv[0])
    # The launcher gave this process a thread budget so that parallel runs share the cores.
    from spinrl.common.device import set_thread_budget

    set_thread_budget()
    thunk(**kwargs)
    return 0


if __name__ == "__main__":
    from spinrl.common.errors import run_main_guarded

    sys.exit(run_main_guarded(main))
