"""Run one experiment described by a JSON file (used by ExperimentGrid for MPI, parallel and Ray runs).

    python -m spinrl.run_entrypoint data/exp/exp_s0/variant.json

The file holds ``{"thunk": {"__callable__": "module:function"}, "kwargs": {...}}``: plain data, so
reading it runs no code other than importing the named module.

``python -m spinrl.run_entrypoint --zygote MODULE ...`` is the grid's zygote (see
:class:`spinrl.grid.Zygote`): it imports the modules once, then forks one child per request.
"""

from __future__ import annotations

import importlib
import json
import os
import selectors
import sys
import time

from spinrl.errors import UserError
from spinrl.grid import decode_value


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--zygote"]:
        return serve_forks(argv[1:])
    if len(argv) != 1:
        raise UserError("usage: python -m spinrl.run_entrypoint SPEC.json")
    try:
        with open(argv[0]) as f:
            spec = json.load(f)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read the run spec {argv[0]}: {e}") from None
    # The grid sets a thread budget per process so that parallel runs share the cores.
    from spinrl.runtime import set_thread_budget

    set_thread_budget()
    thunk = decode_value(spec["thunk"])
    # JSON turns tuples into lists; hidden_sizes and similar accept either.
    kwargs = decode_value(spec["kwargs"])
    thunk(**kwargs)
    return 0


def serve_forks(modules: list[str]) -> int:
    """The zygote: import ``modules``, then fork a child per request line until stdin closes.

    Replies on stdout: ``ready`` once imported, ``started PID`` per request, ``exit PID CODE`` per child.
    """
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:  # an optional module; a child that needs it will report the error
            pass
    print("ready", flush=True)
    children: set[int] = set()
    selector = selectors.DefaultSelector()
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ)
    pending = b""
    listening = True
    while listening or children:
        if listening and selector.select(timeout=0.1):
            chunk = os.read(sys.stdin.fileno(), 65536)
            if not chunk:  # the grid closed our stdin: finish the children, then exit
                listening = False
                selector.unregister(sys.stdin.fileno())
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                pid = os.fork()
                if pid == 0:
                    _run_forked_child(json.loads(line))  # never returns
                children.add(pid)
                print(f"started {pid}", flush=True)
        elif not listening:
            time.sleep(0.1)
        for pid in list(children):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                children.discard(pid)
                print(f"exit {pid} {os.waitstatus_to_exitcode(status)}", flush=True)
    return 0


def _run_forked_child(request: dict) -> None:
    """In a forked child: own session, output to the run's log, run the variant, exit with its code."""
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
    from spinrl.run import run_main_guarded

    # SystemExit unwinds through the zygote's loop, so exit handlers (the logger's) run as usual.
    raise SystemExit(run_main_guarded(main, [request["spec"]]))


if __name__ == "__main__":
    from spinrl.run import run_main_guarded

    sys.exit(run_main_guarded(main))
